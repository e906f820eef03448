//! The protobuf codec of every generated service and client: tonic's, with one change. A request
//! that does not parse (truncated bytes, invalid UTF-8 in a string field, a wrong wire type) is
//! the client's fault, so it is INVALID_ARGUMENT; tonic follows the gRPC convention of INTERNAL,
//! which in this service means a fault of ours and pages an operator.
use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

pub struct LibraryCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for LibraryCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for LibraryCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ClientFault<ProstDecoder<U>>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ClientFault(self.0.decoder())
    }
}

pub struct ClientFault<D>(D);

impl<D: Decoder<Error = Status>> Decoder for ClientFault<D> {
    type Item = D::Item;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        self.0.decode(buf).map_err(|status| {
            if status.code() == Code::Internal {
                Status::invalid_argument(format!(
                    "the message does not parse as protobuf: {}",
                    status.message()
                ))
            } else {
                status
            }
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
