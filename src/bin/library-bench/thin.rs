//! A thin gRPC client for unary calls: prost-encoded messages over raw HTTP/2 (the `h2` crate
//! that tonic itself runs on), without tonic's per-call tower stack and channel buffer. On this
//! 2-core machine the load generator shares the cores with the server and the database, so a
//! client that spends less per call leaves more of them to what is measured, as h2load does for
//! the service and pgbench for the database (the tools issue 13's own figures came from).
use std::net::SocketAddr;

use anyhow::{Context, bail, ensure};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderValue, Method, Request, Uri, uri::Authority, uri::Scheme};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};

use crate::client::TlsClient;

#[derive(Clone)]
pub struct Thin {
    connections: Vec<SendRequest<Bytes>>,
    scheme: Scheme,
    authority: Authority,
    authorization: HeaderValue,
}

impl Thin {
    /// Opens `connections` HTTP/2 connections to `addr` (`http://host:port`, or
    /// `https://host:port` over `tls`); every call carries `authorization`.
    pub async fn connect(
        addr: &str,
        connections: usize,
        authorization: HeaderValue,
        tls: Option<&TlsClient>,
    ) -> anyhow::Result<Self> {
        let uri: Uri = addr.parse().with_context(|| format!("--addr {addr}"))?;
        let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
        let tls = match (scheme == Scheme::HTTPS, tls) {
            (false, _) => None,
            (true, Some(tls)) => Some(tls),
            (true, None) => bail!("{addr} is https: give --tls-ca"),
        };
        let authority = uri.authority().context("--addr has no host:port")?.clone();
        let socket: SocketAddr = tokio::net::lookup_host(authority.as_str())
            .await
            .with_context(|| format!("resolving {authority}"))?
            .next()
            .context("--addr resolves to nothing")?;
        let mut senders = Vec::with_capacity(connections);
        for _ in 0..connections.max(1) {
            let tcp = TcpStream::connect(socket)
                .await
                .with_context(|| format!("connecting to {authority}"))?;
            tcp.set_nodelay(true)?;
            let sender = match tls {
                None => http2(tcp).await?,
                Some(tls) => {
                    let stream = tls
                        .connector
                        .connect(tls.server_name.clone(), tcp)
                        .await
                        .with_context(|| format!("TLS handshake with {authority}"))?;
                    http2(stream).await?
                }
            };
            senders.push(sender);
        }
        Ok(Self {
            connections: senders,
            scheme,
            authority,
            authorization,
        })
    }

    /// One unary call on connection `i` (modulo their number): the decoded answer, or an error
    /// naming the gRPC status the server gave.
    pub async fn unary<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        i: usize,
        path: &'static str,
        message: &Req,
    ) -> anyhow::Result<Resp> {
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .context("request URI")?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("authorization", self.authorization.clone())
            .body(())
            .context("request")?;
        let mut body = BytesMut::with_capacity(5 + message.encoded_len());
        body.put_u8(0);
        body.put_u32(u32::try_from(message.encoded_len()).context("message too large")?);
        message.encode(&mut body).context("encoding")?;

        let sender = self.connections[i % self.connections.len()].clone();
        let mut sender = sender.ready().await.context("connection not ready")?;
        let (response, mut stream) = sender
            .send_request(request, false)
            .context("sending headers")?;
        stream
            .send_data(body.freeze(), true)
            .context("sending the message")?;
        let response = response.await.context("awaiting the response")?;
        // A trailers-only answer (an error) carries its status in the headers.
        if let Some(status) = response.headers().get("grpc-status") {
            bail!(
                "grpc-status {status:?} {:?}",
                response.headers().get("grpc-message")
            );
        }
        let mut body = response.into_body();
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.context("reading the answer")?;
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.context("reading the trailers")?;
        let status = trailers.as_ref().and_then(|t| t.get("grpc-status"));
        ensure!(
            status.is_some_and(|s| s == "0"),
            "grpc-status {status:?} {:?}",
            trailers.as_ref().and_then(|t| t.get("grpc-message"))
        );
        ensure!(data.len() >= 5, "an answer shorter than its frame header");
        let mut frame = data.freeze();
        let compressed = frame.get_u8();
        let len = frame.get_u32() as usize;
        ensure!(compressed == 0, "a compressed answer");
        ensure!(
            frame.len() == len,
            "an answer of {} bytes framed as {len}",
            frame.len()
        );
        Resp::decode(frame).context("decoding the answer")
    }
}

async fn http2<T>(io: T) -> anyhow::Result<SendRequest<Bytes>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = h2::client::handshake(io)
        .await
        .context("HTTP/2 handshake")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("  note: a thin-client connection ended: {e}");
        }
    });
    Ok(sender)
}
