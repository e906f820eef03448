//! Start-up while a dependency is down (a fresh database cluster, a failover, an identity
//! provider restarting) waits for it with exponential backoff instead of crashing into a restart
//! loop; errors that waiting cannot mend fail at once.
use std::time::Duration;

const FIRST_WAIT: Duration = Duration::from_millis(500);
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Runs `attempt` until it succeeds. After a failure, `wait_for` says whether it is worth waiting
/// (it also logs and counts it, given the coming delay); when it is not, the error is returned.
pub async fn until_available<T, E, F, Fut>(
    mut attempt: F,
    mut wait_for: impl FnMut(&E, Duration) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut delay = FIRST_WAIT;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if wait_for(&e, delay) => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_WAIT);
            }
            Err(e) => return Err(e),
        }
    }
}
