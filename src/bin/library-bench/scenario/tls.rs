//! `tls`: what TLS costs a unary call. CheckLikedTracks of 100 ids (half liked) at `--concurrency`
//! (64) calls in flight over `--connections` (4) HTTP/2 connections, through the thin client,
//! against a plaintext server (`--addr http://…`) and a TLS one (`--addr-b https://…`, trusting
//! `--tls-ca`) on the same database, alternated twice so that neither side gets the warmer
//! caches. Handshakes happen before the timed phases: this is the steady-state cost of
//! encrypting every call, which is what a client with a connection pool pays.
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use library_service::pb;
use uuid::Uuid;

use super::{Ctx, check_liked::pick};
use crate::{
    client::TlsClient,
    load,
    report::{self, Report},
    seed,
    stats::Sample,
    thin::Thin,
};

const PATH: &str = "/audiohm.library.v1.LibraryService/CheckLikedTracks";
const WARM_UP_CALLS: usize = 200;
const ROUNDS: usize = 2;
const GOAL: f64 = 0.7;

pub async fn run(ctx: &Ctx, report: &mut Report) -> anyhow::Result<()> {
    let args = &ctx.args;
    let Some(tls_addr) = args.addr_b.as_deref() else {
        bail!("`tls` needs --addr-b https://… (a TLS server on the same database as --addr)");
    };
    if !tls_addr.starts_with("https://") || !args.addr.starts_with("http://") {
        bail!("`tls` compares --addr http://… (plaintext) with --addr-b https://… (TLS)");
    }
    let tls = TlsClient::from_args(args)?.context("`tls` needs --tls-ca")?;
    let user = Uuid::new_v4();
    eprintln!(
        "tls: seeding {} likes, then {ROUNDS} x {} CheckLikedTracks calls of {} ids, {} in flight, on each side...",
        args.likes, args.tls_calls, args.check_ids, args.concurrency
    );
    let liked = Arc::new(seed::likes(&ctx.db, user, args.likes).await?);
    ctx.db.analyze().await?;
    let bearer = ctx.api.session(user)?.value();
    let plain = Thin::connect(&args.addr, args.connections, bearer.clone(), None).await?;
    let secure = Thin::connect(tls_addr, args.connections, bearer, Some(&tls)).await?;

    let (mut plain_phases, mut tls_phases) = (Vec::new(), Vec::new());
    for thin in [&plain, &secure] {
        phase(ctx, thin, &liked, WARM_UP_CALLS).await?;
    }
    for _ in 0..ROUNDS {
        plain_phases.push(phase(ctx, &plain, &liked, args.tls_calls).await?);
        tls_phases.push(phase(ctx, &secure, &liked, args.tls_calls).await?);
    }
    let (plaintext, over_tls) = (Sample::merged(&plain_phases), Sample::merged(&tls_phases));
    let ratio = report::ratio(&over_tls, &plaintext);
    report::emit(report::line(
        "tls",
        "ops/s",
        &over_tls,
        &plaintext,
        &format!(
            "service = over TLS ({tls_addr}), baseline = plaintext ({}); {} calls each of {} ids, {} in flight over {} connections, {ROUNDS} alternated phases; per phase TLS/plaintext: {}",
            args.addr,
            over_tls.calls(),
            args.check_ids,
            args.concurrency,
            args.connections,
            plain_phases
                .iter()
                .zip(&tls_phases)
                .map(|(p, t)| format!("{:.2}", report::ratio(t, p)))
                .collect::<Vec<_>>()
                .join(", "),
        ),
    ));
    report.at_least(
        "tls",
        "unary at 64 in flight >= 0.7x plaintext",
        ratio,
        GOAL,
        format!("{ratio:.2}x"),
    );
    Ok(())
}

/// `calls` CheckLikedTracks through `thin`, answers checked.
async fn phase(
    ctx: &Ctx,
    thin: &Thin,
    liked: &Arc<Vec<Uuid>>,
    calls: usize,
) -> anyhow::Result<Sample> {
    let n = ctx.args.check_ids;
    let call = {
        let (thin, liked) = (thin.clone(), liked.clone());
        move |i: usize| {
            let (ids, expected) = pick(&liked, n);
            let thin = thin.clone();
            async move {
                let request = pb::CheckLikedTracksRequest {
                    user_id: String::new(),
                    track_ids: ids.iter().map(Uuid::to_string).collect(),
                };
                let answer: pb::CheckLikedTracksResponse = thin
                    .unary(i, PATH, &request)
                    .await
                    .context("CheckLikedTracks")?;
                ensure!(
                    answer.liked == expected,
                    "CheckLikedTracks answered wrongly"
                );
                Ok(())
            }
        }
    };
    load::run(calls, ctx.args.concurrency, 1, ctx.args.budget(), call).await
}
