//! The one shape of every handler of both services: the generated trait's method hands the
//! request to `handle` with a handler function; `handle` takes the caller the interceptor
//! verified, admits it as the caller type the handler asks for, runs the handler, and turns its
//! `ApiError` into the client's `Status`, here and nowhere else.
use std::future::Future;

use tonic::{Request, Response, Status};

use super::{context::CallContext, interceptor::client_timeout};
use crate::{auth::Principal, error::ApiResult};

pub(super) type Reply<T> = Result<Response<T>, Status>;

/// Who a handler accepts, as the type of its caller argument says.
pub(super) trait Caller: Sized {
    fn admit(verified: Principal) -> ApiResult<Self>;
}

/// Any verified caller: the handler then decides whose library it may touch (`authorize`).
impl Caller for Principal {
    fn admit(verified: Principal) -> ApiResult<Self> {
        Ok(verified)
    }
}

/// A caller holding `library:admin`; admin handlers take this, so none can forget the check.
pub(super) struct Admin(pub Principal);

impl Caller for Admin {
    fn admit(verified: Principal) -> ApiResult<Self> {
        verified.authorize_admin()?;
        Ok(Self(verified))
    }
}

pub(super) async fn handle<'a, Api, C, Req, Resp, Fut>(
    api: &'a Api,
    request: Request<Req>,
    handler: impl FnOnce(&'a Api, C, Req) -> Fut,
) -> Reply<Resp>
where
    C: Caller,
    Fut: Future<Output = ApiResult<Resp>>,
{
    let verified = request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing credentials"))?;
    let caller = C::admit(verified)?;
    let deadline = request
        .extensions()
        .get::<CallContext>()
        .zip(client_timeout(request.metadata()))
        .map(|(context, timeout)| context.arrived + timeout);
    let work = handler(api, caller, request.into_inner());
    let response = match deadline {
        // Past the deadline the client has gone: the call stops where it waits (a write still
        // queued for its group commit is then never written).
        Some(deadline) => tokio::time::timeout_at(deadline.into(), work)
            .await
            .map_err(|_| {
                Status::deadline_exceeded("the deadline passed before the call finished")
            })??,
        None => work.await?,
    };
    Ok(Response::new(response))
}
