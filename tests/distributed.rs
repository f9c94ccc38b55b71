//! The distributed mode end to end: every function in its own `devgem serve` process on its
//! own port, chained by real Pub/Sub push subscriptions on the gcloud emulator, with state in
//! the Firestore emulator and objects in fake-gcs-server. The builder and runtime are this
//! machine's (native build, local process), so a deployment ends with a URL that answers.
//!
//! The emulators start once for this binary (or come from the environment, see
//! `support/distributed.rs`); each test has its own topic prefix and DEVGEM_HOME. Tests that
//! freeze an emulator hold it exclusively, so no other test sees the outage.
//!
//! Without gcloud the tests say SKIPPED and pass, except under CI (`CI=true`), where they fail.

#[path = "support/distributed.rs"]
mod distributed;
mod support;

use distributed::{
    Cluster, assert_complete_story, assert_contiguous, assert_each_stage_once, count, emulators,
    exclusive_emulators, gcp_config, group_alive, shared_emulators,
};
use serde_json::Value;
use std::time::{Duration, Instant};
use support::{fixture, get, read_events, slow_build_app, wait_for};

const TERMINAL: &[&str] = &["live", "failed", "aborted"];

fn static_site() -> String {
    fixture("static-site").to_str().unwrap().to_string()
}

/// Asserts `d` is live and its URL answers with the static-site fixture's page.
fn assert_live_static_site(d: &Value) {
    assert_eq!(d["status"], "live", "{d}");
    let url = d["url"].as_str().expect("a live deployment has a url");
    let (status, body) = get(url).unwrap_or_else(|| panic!("{url} does not answer"));
    assert_eq!(status, 200, "{url}: {body}");
    assert!(
        body.contains("Hello from static-site"),
        "{url} answered something else: {body}"
    );
}

/// The emulators, or return (devgem-testing has said SKIPPED; under CI it fails instead).
macro_rules! require_emulators {
    () => {
        match emulators() {
            Some(e) => e,
            None => return,
        }
    };
}

#[test]
fn a_deployment_goes_live_through_four_processes() {
    let emu = require_emulators!();
    let _gate = shared_emulators();
    let cluster = Cluster::start(emu, "live");
    let started = Instant::now();
    let id = cluster.create(&static_site());
    let d = cluster.wait_status(&id, TERMINAL, Duration::from_secs(90));
    eprintln!("live through four processes in {:?}", started.elapsed());
    assert_live_static_site(&d);

    let events = cluster.all_events(&id);
    assert_contiguous(&events);
    assert_each_stage_once(&events);
    assert_complete_story(&id, &events);
    // Each stage ran in its own process: the stage processes serve no API.
    for (function, _) in distributed::STAGES {
        let (status, _) = get(&format!(
            "{}/api/deployments/{id}",
            cluster.stages[function].url
        ))
        .expect("stage process answers");
        assert_eq!(status, 404, "{function} should not serve the API");
    }
}

#[test]
fn the_progress_stream_comes_from_chat_in_order_and_resumes() {
    let emu = require_emulators!();
    let _gate = shared_emulators();
    let cluster = Cluster::start(emu, "sse");
    // A build of a few seconds, so the stream is read while the deployment runs.
    let app = cluster.home.path().join("src/slow");
    slow_build_app(&app, 3);
    let id = cluster.create(app.to_str().unwrap());

    // Read the first events live, then drop the connection.
    let first = read_events(cluster.api(), &id, 0, 3);
    assert_eq!(first.len(), 3, "{first:?}");
    let last_seen = first.last().unwrap()["seq"].as_u64().unwrap();
    let still_running = cluster
        .deployment(&id)
        .is_some_and(|d| !TERMINAL.contains(&d["status"].as_str().unwrap_or("")));
    // Reconnect with Last-Event-ID; the stream ends after the final event.
    let rest = read_events(cluster.api(), &id, last_seen, usize::MAX);
    let mut joined = first.clone();
    joined.extend(rest.iter().cloned());
    assert_contiguous(&joined);
    let last = joined.last().unwrap();
    assert_eq!(
        last["status"], "live",
        "the stream ends with the final event: {last}"
    );

    // The whole stream read again after the end is the same events. A live stream may show a
    // stored event's percent raised to the progress it had already computed (the bar never
    // goes back), so percent is the one field left out of the comparison.
    let without_percent = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().map(|o| o.remove("percent"));
                e
            })
            .collect()
    };
    let again = cluster.all_events(&id);
    assert_eq!(
        without_percent(&again),
        without_percent(&joined),
        "a fresh read differs from the resumed one"
    );
    assert_each_stage_once(&joined);
    eprintln!(
        "{} events; reconnected after seq {last_seen} while the deployment was {}",
        joined.len(),
        if still_running {
            "running"
        } else {
            "already over"
        }
    );

    // The stage processes do not serve the stream.
    let (status, _) = get(&format!(
        "{}/api/deployments/{id}/events",
        cluster.stages["analyze"].url
    ))
    .unwrap();
    assert_eq!(status, 404);
}

#[test]
fn a_build_process_killed_mid_build_is_redelivered_and_nothing_runs_twice() {
    let emu = require_emulators!();
    let _gate = shared_emulators();
    let mut cluster = Cluster::start(emu, "kill");
    let app = cluster.home.path().join("src/slow");
    slow_build_app(&app, 6);
    let id = cluster.create(app.to_str().unwrap());

    // Wait until the build step is running in the build-trigger process.
    wait_for(
        "the container build to start",
        Duration::from_secs(90),
        || {
            let d = cluster.deployment(&id)?;
            (d["status"] == "building" && d["step"] == "container_build").then_some(())
        },
    );
    cluster.kill("build-trigger");
    let killed = Instant::now();
    cluster.restart("build-trigger");

    let d = cluster.wait_status(&id, TERMINAL, Duration::from_secs(120));
    eprintln!("live {:?} after the kill", killed.elapsed());
    assert_eq!(d["status"], "live", "{d}");
    let (status, body) = get(d["url"].as_str().unwrap()).expect("the app answers");
    assert_eq!(status, 200);
    assert!(body.contains("Hello from slow-build"), "{body}");

    let events = cluster.all_events(&id);
    assert_contiguous(&events);
    // The interrupted build ran again; the user sees it finish once, and one app started.
    assert_eq!(
        count(
            &events,
            "status",
            "Resuming the build stage after an interrupted attempt"
        ),
        1,
        "the build stage should have been resumed once: {events:#?}"
    );
    assert_eq!(count(&events, "step_completed", "Build finished"), 1);
    assert_complete_story(&id, &events);
    let answering = events
        .iter()
        .filter(|e| {
            e["kind"] == "step_completed"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(" answering at "))
        })
        .count();
    assert_eq!(answering, 1, "the app was started {answering} times");
    let live = events.iter().filter(|e| e["status"] == "live").count();
    assert_eq!(live, 1, "live announced {live} times");
    // One app process group for this deployment, and it is alive.
    let apps: Vec<_> = std::fs::read_dir(cluster.home.path().join("apps"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(apps.len(), 1, "{apps:?}");
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(apps[0].path().join("runtime.json")).unwrap(),
    )
    .unwrap();
    assert!(group_alive(record["pgid"].as_i64().unwrap()));
}

#[test]
fn duplicate_stage_messages_run_each_stage_once() {
    let emu = require_emulators!();
    let _gate = shared_emulators();
    let cluster = Cluster::start(emu, "dup");
    let id = cluster.create(&static_site());
    // The same analyze message twice more, racing the original.
    cluster.publish_raw("analyze", &id);
    cluster.publish_raw("analyze", &id);
    // Duplicates of the later stages once they are asked for.
    let mut sent = Vec::new();
    let d = wait_for("the deployment to end", Duration::from_secs(90), || {
        let d = cluster.deployment(&id)?;
        let status = d["status"].as_str().unwrap_or("").to_string();
        for (stage, when) in [("build", "building"), ("deploy", "deploying")] {
            if status == when && !sent.contains(&stage) {
                cluster.publish_raw(stage, &id);
                sent.push(stage);
            }
        }
        TERMINAL.contains(&status.as_str()).then_some(d)
    });
    assert_live_static_site(&d);
    let events = cluster.all_events(&id);
    assert_contiguous(&events);
    assert_each_stage_once(&events);
    assert_complete_story(&id, &events);
    // No stage was interrupted and taken over by a duplicate.
    let resumed = events
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Resuming the"))
        })
        .count();
    assert_eq!(resumed, 0, "{resumed} resumed stages");
    for step in ["repository_access", "container_build", "deploy"] {
        let started = events
            .iter()
            .filter(|e| e["kind"] == "step_started" && e["step"] == step)
            .count();
        assert_eq!(started, 1, "{step} started {started} times");
    }
    // One deployment: the duplicates created nothing.
    let list: Value = support::http()
        .get(format!("{}/api/deployments", cluster.api()))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .or_else(|| list["deployments"].as_array())
        .expect("a list")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .filter(|i| *i == id)
        .collect();
    assert_eq!(ids.len(), 1);
    eprintln!("duplicates published for analyze x2 and {sent:?}");
}

#[test]
fn a_message_that_always_fails_is_dead_lettered_and_fails_its_deployment() {
    let emu = require_emulators!();
    let _gate = shared_emulators();
    let cluster = Cluster::start(emu, "dlq");
    // A deployment in `building` whose plan artifact was never stored: the build stage
    // answers "retry" on every delivery.
    let id = devgem_domain::DeploymentId::from_uuid(uuid::Uuid::now_v7());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use devgem_ports::StateStore;
        let store = devgem_gcp::FirestoreStore::new(&gcp_config(emu, &cluster.prefix))
            .await
            .expect("Firestore");
        let now = chrono::Utc::now();
        let mut d = devgem_domain::Deployment::new(
            id.clone(),
            devgem_domain::NewDeployment {
                owner: devgem_fn_chat::LOCAL_OWNER.to_string(),
                source: devgem_domain::Source {
                    location: static_site(),
                    archive: None,
                    branch: None,
                    commit: None,
                    subdir: None,
                },
                service_name: devgem_domain::ServiceName::derive_from("dlq"),
                env_names: vec![],
            },
            now,
        );
        d.transition(devgem_domain::Status::Analyzing, now).unwrap();
        d.transition(devgem_domain::Status::Building, now).unwrap();
        d.stages_done.push(devgem_domain::Stage::Analyze);
        store.create(&d).await.expect("write the deployment");
    });
    let started = Instant::now();
    cluster.publish_raw("build", id.as_str());

    let d = cluster.wait_status(id.as_str(), TERMINAL, Duration::from_secs(120));
    eprintln!("dead-lettered and failed after {:?}", started.elapsed());
    assert_eq!(d["status"], "failed", "{d}");
    let reason = d["error"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("build stage"),
        "the reason should name the build stage: {d}"
    );
    assert!(
        reason.contains("5 attempts"),
        "the reason should count the attempts: {d}"
    );
    let events = cluster.all_events(id.as_str());
    let last = events.last().expect("events");
    assert_eq!(last["status"], "failed", "{last}");
    // It was retried: one start, then resumes or restarts of the build stage, all under 5.
    let attempts = events
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("the build stage") && !m.contains("could not"))
        })
        .count();
    assert!(
        (1..=5).contains(&attempts),
        "{attempts} build attempts: {events:#?}"
    );
}

#[test]
fn fifty_deployments_at_once_all_go_live() {
    let emu = require_emulators!();
    let _gate = shared_emulators();
    let cluster = Cluster::start(emu, "fifty");
    let started = Instant::now();
    let source = static_site();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| s.spawn(|| cluster.create(&source)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("50 deployments created in {:?}", started.elapsed());
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 50);
    let finals = wait_all_terminal(&cluster, &ids, Duration::from_secs(180));
    eprintln!("50 deployments terminal in {:?}", started.elapsed());
    let not_live: Vec<&Value> = finals.iter().filter(|d| d["status"] != "live").collect();
    assert!(not_live.is_empty(), "not live: {not_live:#?}");
    for d in &finals {
        assert_live_static_site(d);
    }
    // Each one ran each stage once.
    for id in ids.iter().take(5) {
        let events = cluster.all_events(id);
        assert_contiguous(&events);
        assert_each_stage_once(&events);
        assert_complete_story(id, &events);
    }
}

/// Polls until every deployment is terminal; the assertion names the ones that are not.
fn wait_all_terminal(cluster: &Cluster, ids: &[String], limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    let mut done: std::collections::HashMap<String, Value> = Default::default();
    loop {
        for id in ids {
            if done.contains_key(id) {
                continue;
            }
            if let Some(d) = cluster.deployment(id)
                && TERMINAL.contains(&d["status"].as_str().unwrap_or(""))
            {
                done.insert(id.clone(), d);
            }
        }
        if done.len() == ids.len() {
            return ids.iter().map(|id| done[id].clone()).collect();
        }
        if Instant::now() >= deadline {
            let stuck: Vec<String> = ids
                .iter()
                .filter(|id| !done.contains_key(*id))
                .map(|id| {
                    let d = cluster.deployment(id).unwrap_or(Value::Null);
                    format!("{id}: {} {}", d["status"], d["step"])
                })
                .collect();
            panic!(
                "after {limit:?}, {} of {} deployments are not over: {stuck:#?}",
                stuck.len(),
                ids.len()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// How long an emulator stays unreachable in the outage tests.
const OUTAGE: Duration = Duration::from_secs(30);

/// Starts deployments, freezes emulator `name` while they run, thaws it, and checks every
/// deployment still ends live with each stage run once.
fn survive_outage(name: &str) {
    let emu = require_emulators!();
    if !emu.can_pause() {
        eprintln!("SKIPPED: the emulators came from the environment; cannot pause them");
        return;
    }
    let _gate = exclusive_emulators();
    let cluster = Cluster::start(emu, &format!("outage-{name}"));
    let app = cluster.home.path().join("src/slow");
    slow_build_app(&app, 2);
    let mut ids = vec![];
    for i in 0..4 {
        // Half slow builds (mid-build at the outage), half static sites.
        let source = if i % 2 == 0 {
            app.to_str().unwrap().to_string()
        } else {
            static_site()
        };
        ids.push(cluster.create(&source));
    }
    // Freeze once the pipeline is under way.
    wait_for(
        "the first deployment to start",
        Duration::from_secs(30),
        || {
            cluster
                .deployment(&ids[0])
                .filter(|d| d["status"] != "queued")
        },
    );
    let running = ids
        .iter()
        .filter(|id| {
            cluster
                .deployment(id)
                .is_some_and(|d| !TERMINAL.contains(&d["status"].as_str().unwrap_or("")))
        })
        .count();
    // Nothing finishes during the outage: a commit needs Firestore, a stage boundary Pub/Sub.
    assert!(running > 0, "every deployment ended before the outage");
    let paused = emu.pause(name);
    let frozen = Instant::now();
    // The outage itself is the condition under test: a fixed span, not a guess.
    std::thread::sleep(OUTAGE);
    drop(paused);
    eprintln!(
        "{name} emulator thawed after {:?}; {running} deployments were running",
        frozen.elapsed()
    );

    let finals = wait_all_terminal(&cluster, &ids, Duration::from_secs(150));
    eprintln!(
        "all deployments over {:?} after the thaw",
        frozen.elapsed() - OUTAGE
    );
    for (id, d) in ids.iter().zip(&finals) {
        assert_eq!(d["status"], "live", "{id} after the {name} outage: {d}");
        let url = d["url"].as_str().unwrap();
        assert_eq!(get(url).map(|(s, _)| s), Some(200), "{url}");
        let events = cluster.all_events(id);
        assert_contiguous(&events);
        assert_complete_story(id, &events);
    }
}

#[test]
fn a_firestore_outage_mid_run_loses_nothing() {
    survive_outage("firestore");
}

#[test]
fn a_pubsub_outage_mid_run_loses_nothing() {
    survive_outage("pubsub");
}

#[test]
fn an_early_stray_message_for_a_later_stage_does_not_fail_a_healthy_deployment() {
    let emu = require_emulators!();
    let _gate = shared_emulators();
    let cluster = Cluster::start(emu, "early");
    // A build longer than a message's five attempts take to run out (~15-20 s on the
    // emulator), so the stray deploy message is dead-lettered while the build runs.
    let app = cluster.home.path().join("src/slow");
    slow_build_app(&app, 25);
    let id = cluster.create(app.to_str().unwrap());
    let started = Instant::now();
    cluster.publish_raw("deploy", &id);
    let d = cluster.wait_status(&id, TERMINAL, Duration::from_secs(120));
    eprintln!("ended {:?} after the stray message", started.elapsed());
    assert_eq!(
        d["status"], "live",
        "a stray deploy message failed the deployment: {d}"
    );
    assert!(
        started.elapsed() > Duration::from_secs(20),
        "the build should outlast the stray message's attempts"
    );
    let events = cluster.all_events(&id);
    assert_contiguous(&events);
    assert_each_stage_once(&events);
    assert_complete_story(&id, &events);
}
