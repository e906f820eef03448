// The typed client a frontend starts from: the generated LibraryService descriptor, called over
// gRPC-web (what browsers can speak) with the listener's token on every call.
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { LibraryService } from "./gen/audiohm/library/v1/library_pb.ts";

export type LibraryClient = Client<typeof LibraryService>;

/** `baseUrl` is the service's origin, e.g. `https://library.audiohm.example`. */
export function createLibraryClient(baseUrl: string, token: string): LibraryClient {
  const bearer: Interceptor = (next) => (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  const transport = createGrpcWebTransport({ baseUrl, interceptors: [bearer] });
  return createClient(LibraryService, transport);
}
