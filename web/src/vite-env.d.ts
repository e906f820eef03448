/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The service's origin when it is not the page's own (then the service needs CORS). */
  readonly VITE_LIBRARY_URL?: string;
}
