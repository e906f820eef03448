//! The group commit's own rules, with a writer that the tests hold and release: when groups
//! form, what is shed, who is left out, and who gets which answer when a group fails.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Semaphore;
use tracing::Instrument;

use super::*;
use crate::domain::{Play, PlayId, PlaySource, Timestamp, TrackId};

/// Writes nothing anywhere: it logs each group's calls (by listener), waits for a permit of
/// `gate` per group, and fails every group holding `bad`'s call.
#[derive(Clone)]
struct Held {
    gate: Arc<Semaphore>,
    groups: Arc<Mutex<Vec<Vec<UserId>>>>,
    bad: Option<UserId>,
    unreachable: bool,
}

impl Held {
    fn new() -> Self {
        Self {
            gate: Arc::new(Semaphore::new(0)),
            groups: Arc::default(),
            bad: None,
            unreachable: false,
        }
    }

    fn groups(&self) -> Vec<Vec<UserId>> {
        self.groups.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Lets every group through from now on.
    fn open(&self) {
        self.gate.add_permits(Semaphore::MAX_PERMITS / 2);
    }
}

impl GroupWrite for Held {
    async fn write_group(&self, jobs: &[Job]) -> StoreResult<Vec<Vec<Recorded>>> {
        if let Ok(permit) = self.gate.acquire().await {
            permit.forget();
        }
        if let Ok(mut groups) = self.groups.lock() {
            groups.push(jobs.iter().map(|j| j.user).collect());
        }
        if self.unreachable {
            return Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut));
        }
        if jobs.iter().any(|j| Some(j.user) == self.bad) {
            return Err(StoreError::Corrupt("a constraint".into()));
        }
        Ok(jobs
            .iter()
            .map(|j| {
                j.plays
                    .iter()
                    .map(|p| Recorded {
                        play: Play {
                            id: PlayId::new_v7(),
                            user_id: j.user,
                            track_id: p.track_id,
                            played_at: p.played_at,
                            played_for_seconds: p.played_for_seconds,
                            completed: p.completed,
                            source: p.source.as_str().to_string(),
                            track_duration_seconds: None,
                            counted: true,
                        },
                        duplicate: false,
                    })
                    .collect()
            })
            .collect())
    }
}

fn plays(n: usize) -> Vec<NewPlay> {
    (0..n)
        .map(|_| NewPlay {
            track_id: TrackId::from_uuid(uuid::Uuid::new_v4()),
            played_for_seconds: 30,
            completed: true,
            source: PlaySource::parse("album").expect("a valid source"),
            played_at: Timestamp::now(),
            request_id: None,
            track_duration_seconds: None,
            counted: true,
        })
        .collect()
}

fn listener() -> UserId {
    UserId::from_uuid(uuid::Uuid::new_v4())
}

fn limits(queue_plays: usize) -> GroupLimits {
    GroupLimits {
        in_flight: 1,
        group_plays: 100,
        part_plays: usize::MAX,
        queue_plays,
        max_wait: Duration::from_secs(10),
        live_floor_calls: 1000,
    }
}

/// Waits for the group commit to reach a state the test can see (its status).
async fn until(what: impl Fn() -> bool) {
    for _ in 0..500 {
        if what() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the group commit did not get there in 1 s");
}

#[tokio::test]
async fn calls_that_arrive_while_a_group_commits_share_the_next_one() {
    let writer = Held::new();
    let group = GroupCommit::start(writer.clone(), limits(1000));
    let lone = listener();
    let first = tokio::spawn({
        let group = group.clone();
        async move { group.record(lone, plays(1), Patience::Live).await }
    });
    until(|| group.status().calls == 1).await;
    let others: Vec<UserId> = (0..10).map(|_| listener()).collect();
    let waiting: Vec<_> = others
        .iter()
        .map(|&user| {
            let group = group.clone();
            tokio::spawn(async move { group.record(user, plays(2), Patience::Live).await })
        })
        .collect();
    until(|| group.status().queued_plays == 21).await;
    writer.open();
    let first = first
        .await
        .expect("the call ran")
        .expect("the lone call is written");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].play.user_id, lone);
    for (user, call) in others.iter().zip(waiting) {
        let recorded = call.await.expect("the call ran").expect("written");
        assert_eq!(recorded.len(), 2, "each caller gets its own plays");
        assert!(recorded.iter().all(|r| r.play.user_id == *user));
    }
    let groups = writer.groups();
    assert_eq!(
        groups.len(),
        2,
        "one group for the lone call, one for the ten: {groups:?}"
    );
    assert_eq!(groups[0], vec![lone]);
    assert_eq!(groups[1], others);
    let status = group.status();
    assert_eq!((status.groups, status.calls, status.plays), (2, 11, 21));
    assert_eq!(status.queued_plays, 0, "every call's room is given back");
}

#[tokio::test]
async fn a_call_that_would_overfill_the_queue_is_shed_at_once() {
    let writer = Held::new();
    let group = GroupCommit::start(writer.clone(), limits(5));
    let committing = tokio::spawn({
        let group = group.clone();
        async move { group.record(listener(), plays(3), Patience::Live).await }
    });
    until(|| group.status().calls == 1).await;
    let queued = tokio::spawn({
        let group = group.clone();
        async move { group.record(listener(), plays(2), Patience::Live).await }
    });
    until(|| group.status().queued_plays == 5).await;
    let shed = group.record(listener(), plays(1), Patience::Live).await;
    assert!(matches!(shed, Err(StoreError::Overloaded)), "{shed:?}");
    assert_eq!(group.status().shed, 1);
    writer.open();
    committing.await.expect("ran").expect("written");
    queued.await.expect("ran").expect("written");
    // With the queue drained there is room again.
    let again = group
        .record(listener(), plays(5), Patience::Live)
        .await
        .expect("written");
    assert_eq!(again.len(), 5);
    // A call larger than the whole queue waits for an empty queue instead of never fitting.
    let large = group
        .record(listener(), plays(8), Patience::Live)
        .await
        .expect("written");
    assert_eq!(large.len(), 8);
}

#[tokio::test]
async fn a_caller_gone_while_queued_is_left_out_of_the_group() {
    let writer = Held::new();
    let group = GroupCommit::start(writer.clone(), limits(1000));
    let (first, gone, later) = (listener(), listener(), listener());
    let committing = tokio::spawn({
        let group = group.clone();
        async move { group.record(first, plays(1), Patience::Live).await }
    });
    until(|| group.status().calls == 1).await;
    let timed_out = tokio::time::timeout(
        Duration::from_millis(20),
        group.record(gone, plays(1), Patience::Live),
    )
    .await;
    assert!(
        timed_out.is_err(),
        "the call stays queued while the group commits"
    );
    let queued = tokio::spawn({
        let group = group.clone();
        async move { group.record(later, plays(1), Patience::Live).await }
    });
    // The first call's room, the abandoned call's (given back when it is dropped) and this one.
    until(|| group.status().queued_plays == 3).await;
    writer.open();
    committing.await.expect("ran").expect("written");
    queued.await.expect("ran").expect("written");
    assert_eq!(writer.groups(), vec![vec![first], vec![later]]);
    assert_eq!(group.status().abandoned, 1);
    assert_eq!(group.status().queued_plays, 0);
}

#[tokio::test]
async fn a_group_failing_for_one_call_is_written_again_call_by_call() {
    let mut writer = Held::new();
    let (good, bad, also_good) = (listener(), listener(), listener());
    writer.bad = Some(bad);
    let group = GroupCommit::start(writer.clone(), limits(1000));
    let blocker = tokio::spawn({
        let group = group.clone();
        async move { group.record(listener(), plays(1), Patience::Live).await }
    });
    until(|| group.status().calls == 1).await;
    let calls: Vec<_> = [good, bad, also_good]
        .into_iter()
        .map(|user| {
            let group = group.clone();
            tokio::spawn(async move { group.record(user, plays(1), Patience::Live).await })
        })
        .collect();
    until(|| group.status().queued_plays == 4).await;
    writer.open();
    blocker.await.expect("ran").expect("written");
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.expect("ran"));
    }
    assert_eq!(answers[0].as_ref().expect("written")[0].play.user_id, good);
    assert!(
        matches!(answers[1], Err(StoreError::Corrupt(_))),
        "{:?}",
        answers[1]
    );
    assert_eq!(
        answers[2].as_ref().expect("written")[0].play.user_id,
        also_good
    );
    let groups = writer.groups();
    assert_eq!(groups[1], vec![good, bad, also_good], "first together");
    assert_eq!(
        groups[2..],
        [vec![good], vec![bad], vec![also_good]],
        "then one by one"
    );
    assert_eq!(group.status().split, 1);
}

/// The log lines, for a test that reads them.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = self.0.lock() {
            logs.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A group holds many calls, each with its own trace: what is logged of a failed group is
/// logged in each call's span, so that searching the logs for a call's trace id finds it.
#[tokio::test]
async fn a_failed_group_is_logged_in_the_span_of_each_of_its_calls() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    // The test's runtime has one thread: the group's tasks log through this subscriber too.
    let _logging = tracing::subscriber::set_default(subscriber);
    let mut writer = Held::new();
    let (good, bad) = (listener(), listener());
    writer.bad = Some(bad);
    let group = GroupCommit::start(writer.clone(), limits(1000));
    let blocker = tokio::spawn({
        let group = group.clone();
        async move { group.record(listener(), plays(1), Patience::Live).await }
    });
    until(|| group.status().calls == 1).await;
    let calls: Vec<_> = [(good, "trace-of-good"), (bad, "trace-of-bad")]
        .into_iter()
        .map(|(user, trace)| {
            let group = group.clone();
            let span = tracing::info_span!("call", trace_id = trace);
            tokio::spawn(
                async move { group.record(user, plays(1), Patience::Live).await }.instrument(span),
            )
        })
        .collect();
    until(|| group.status().queued_plays == 3).await;
    writer.open();
    blocker.await.expect("ran").expect("written");
    for call in calls {
        let _ = call.await.expect("ran");
    }
    let logs = String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned();
    for trace in ["trace-of-good", "trace-of-bad"] {
        assert!(
            logs.lines()
                .any(|l| l.contains(&format!("trace_id=\"{trace}\""))
                    && l.contains("the group holding this call failed")),
            "{trace} in {logs}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_database_is_every_callers_answer_without_retrying_each() {
    let mut writer = Held::new();
    writer.unreachable = true;
    let group = GroupCommit::start(writer.clone(), limits(1000));
    let blocker = tokio::spawn({
        let group = group.clone();
        async move { group.record(listener(), plays(1), Patience::Live).await }
    });
    until(|| group.status().calls == 1).await;
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let group = group.clone();
            tokio::spawn(async move { group.record(listener(), plays(1), Patience::Live).await })
        })
        .collect();
    until(|| group.status().queued_plays == 4).await;
    writer.open();
    assert!(
        blocker
            .await
            .expect("ran")
            .is_err_and(|e| e.is_unavailable())
    );
    for call in calls {
        let answer = call.await.expect("ran");
        assert!(answer.is_err_and(|e| e.is_unavailable()));
    }
    assert_eq!(
        writer.groups().len(),
        2,
        "no call is written again on its own"
    );
    assert_eq!(group.status().split, 0);
}

#[tokio::test]
async fn a_live_call_is_shed_at_once_when_more_live_calls_wait_than_may_and_a_bulk_one_waits() {
    let writer = Held::new();
    // Nothing has committed yet, so no plays may wait beyond the floor of one live call.
    let group = GroupCommit::start(
        writer.clone(),
        GroupLimits {
            live_floor_calls: 1,
            ..limits(1000)
        },
    );
    let (first, waiting, bulk) = (listener(), listener(), listener());
    let committing = tokio::spawn({
        let group = group.clone();
        async move { group.record(first, plays(1), Patience::Live).await }
    });
    until(|| group.status().calls == 1).await;
    let queued: Vec<_> = [(waiting, 2, Patience::Live), (bulk, 5, Patience::Bulk)]
        .into_iter()
        .map(|(user, n, patience)| {
            let group = group.clone();
            tokio::spawn(async move { group.record(user, plays(n), patience).await })
        })
        .collect();
    until(|| group.status().queued_plays == 8).await;
    let shed = group.record(listener(), plays(1), Patience::Live).await;
    assert!(matches!(shed, Err(StoreError::Overloaded)), "{shed:?}");
    writer.open();
    committing.await.expect("ran").expect("written");
    for call in queued {
        call.await.expect("ran").expect("written");
    }
    assert_eq!(writer.groups(), vec![vec![first], vec![bulk, waiting]]);
    assert_eq!(group.status().shed, 1);
    // With the queue drained a live call waits for nobody, however large.
    let alone = group.record(listener(), plays(50), Patience::Live).await;
    assert_eq!(alone.expect("written").len(), 50);
}

#[tokio::test]
async fn live_calls_go_ahead_of_bulk_ones_but_every_group_takes_the_oldest_bulk_call() {
    let writer = Held::new();
    let group = GroupCommit::start(
        writer.clone(),
        GroupLimits {
            group_plays: 3,
            ..limits(1000)
        },
    );
    let committing = tokio::spawn({
        let group = group.clone();
        async move { group.record(listener(), plays(1), Patience::Live).await }
    });
    until(|| group.status().calls == 1).await;
    let mut order = Vec::new();
    let mut calls = Vec::new();
    // Queued in this order: three bulk calls, then four live ones.
    for patience in [Patience::Bulk; 3].into_iter().chain([Patience::Live; 4]) {
        let user = listener();
        order.push(user);
        let handle = group.clone();
        calls.push(tokio::spawn(async move {
            handle.record(user, plays(1), patience).await
        }));
        let queued = order.len() as u64 + 1;
        until(|| group.status().queued_plays == queued).await;
    }
    writer.open();
    committing.await.expect("ran").expect("written");
    for call in calls {
        call.await.expect("ran").expect("written");
    }
    let (b, l) = (&order[..3], &order[3..]);
    assert_eq!(
        writer.groups()[1..],
        [vec![b[0], l[0], l[1]], vec![b[1], l[2], l[3]], vec![b[2]]]
    );
}

/// Two groups at once, live calls of more than four plays queued in parts.
fn in_parts_of_four() -> GroupLimits {
    GroupLimits {
        in_flight: 2,
        part_plays: 4,
        ..limits(1000)
    }
}

#[tokio::test]
async fn a_large_live_call_is_written_in_parts_by_groups_committing_side_by_side() {
    let writer = Held::new();
    let group = GroupCommit::start(writer.clone(), in_parts_of_four());
    let user = listener();
    let sent = plays(10);
    let tracks: Vec<TrackId> = sent.iter().map(|p| p.track_id).collect();
    let call = tokio::spawn({
        let group = group.clone();
        async move { group.record(user, sent, Patience::Live).await }
    });
    // The writer holds every group: two are committing at once, both with parts of the call.
    until(|| group.status().groups == 2).await;
    assert_eq!(
        group.status().plays,
        10,
        "the whole call is in the two groups"
    );
    writer.open();
    let recorded = call.await.expect("the call ran").expect("written");
    let answered: Vec<TrackId> = recorded.iter().map(|r| r.play.track_id).collect();
    assert_eq!(answered, tracks, "one answer per play, in the call's order");
    let groups = writer.groups();
    assert_eq!(groups.len(), 2, "{groups:?}");
    assert!(groups.iter().flatten().all(|u| *u == user));
    assert_eq!(
        group.status().queued_plays,
        0,
        "every part's room is given back"
    );
}

#[tokio::test]
async fn an_import_batch_is_never_split() {
    let writer = Held::new();
    let group = GroupCommit::start(writer.clone(), in_parts_of_four());
    writer.open();
    let recorded = group
        .record(listener(), plays(10), Patience::Bulk)
        .await
        .expect("written");
    assert_eq!(recorded.len(), 10);
    assert_eq!(writer.groups().len(), 1, "one group, one job");
    assert_eq!(writer.groups()[0].len(), 1);
}
