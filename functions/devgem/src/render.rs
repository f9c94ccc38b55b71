//! Shows a deployment's progress events: a bar per step on a terminal, one plain line per
//! event (per line of output) when piped, or one JSON object per stored event with `--json`.
//!
//! A step that ticks is stored once; on a terminal its bar moves on its own about once a
//! second, computed from that event the way the SSE endpoint computes it.

use crate::cli::say;
use devgem_domain::{EventKind, ProgressEvent, Status, Step, VirtualProgress};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a bar that moves on its own is redrawn.
const TICK_EVERY: Duration = Duration::from_secs(1);

pub enum Renderer {
    Bars {
        bars: Arc<Mutex<Bars>>,
        /// Moves the bar of a ticking step between stored events.
        ticker: tokio::task::JoinHandle<()>,
    },
    Plain,
    Json,
}

pub struct Bars {
    multi: MultiProgress,
    bars: HashMap<Step, ProgressBar>,
    progress: VirtualProgress,
}

impl Renderer {
    /// A renderer for stdout; on a terminal it must be made inside the tokio runtime.
    pub fn new(json: bool) -> Self {
        if json {
            Renderer::Json
        } else if std::io::stdout().is_terminal() {
            let bars = Arc::new(Mutex::new(Bars {
                multi: MultiProgress::new(),
                bars: HashMap::new(),
                progress: VirtualProgress::default(),
            }));
            let ticking = bars.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(TICK_EVERY).await;
                    let Ok(mut b) = ticking.lock() else { return };
                    if let Some((step, percent)) = b.progress.advance(chrono::Utc::now())
                        && let Some(bar) = b.bars.get(&step)
                        && !bar.is_finished()
                    {
                        bar.set_position(u64::from(within(step, percent)));
                    }
                }
            });
            Renderer::Bars { bars, ticker }
        } else {
            Renderer::Plain
        }
    }

    pub fn show(&mut self, event: &ProgressEvent) {
        match self {
            Renderer::Json => {
                let line = serde_json::to_string(event).unwrap_or_default();
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            // A tick only moves a bar; as a line of a log it would repeat the step's title.
            Renderer::Plain if event.kind == EventKind::Progress => {}
            Renderer::Plain => {
                for line in plain_lines(event) {
                    say(format_args!("{line}"));
                }
            }
            Renderer::Bars { bars, .. } => {
                if let Ok(mut b) = bars.lock() {
                    show_bar(&mut b, event);
                }
            }
        }
    }

    /// Clears the bars so the final lines print cleanly.
    pub fn finish(&mut self) {
        if let Renderer::Bars { bars, ticker } = self {
            ticker.abort();
            if let Ok(b) = bars.lock() {
                for bar in b.bars.values() {
                    if !bar.is_finished() {
                        bar.abandon();
                    }
                }
            }
        }
    }

    pub fn is_json(&self) -> bool {
        matches!(self, Renderer::Json)
    }
}

/// One line per event; an output event gives one line per line of output it carries.
fn plain_lines(event: &ProgressEvent) -> Vec<String> {
    if event.kind == EventKind::Log {
        return event
            .lines()
            .map(|line| {
                plain_line(&ProgressEvent {
                    message: line.to_string(),
                    ..event.clone()
                })
            })
            .collect();
    }
    vec![plain_line(event)]
}

fn plain_line(event: &ProgressEvent) -> String {
    let what = match (event.kind, event.step) {
        (EventKind::Status, _) => format!(
            "status {}",
            event.status.map(|s| s.to_string()).unwrap_or_default()
        ),
        (EventKind::Log, Some(step)) => format!("{} |", step.title()),
        (EventKind::Warning, Some(step)) => format!("{} warning:", step.title()),
        (_, Some(step)) => format!("{}:", step.title()),
        (_, None) => String::new(),
    };
    format!("[{:>3}%] {what} {}", event.percent, event.message)
}

fn style(done: bool) -> ProgressStyle {
    let template = if done {
        "{prefix:>22.bold} {bar:30.green} {msg}"
    } else {
        "{spinner:.cyan} {prefix:>20.bold} {bar:30.cyan/blue} {msg}"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Where `percent` of the whole bar puts `step`'s own bar.
fn within(step: Step, percent: u8) -> u8 {
    percent
        .saturating_sub(step.start_percent())
        .min(step.weight())
}

fn show_bar(b: &mut Bars, event: &ProgressEvent) {
    let percent = b.progress.observe(event);
    let Bars { multi, bars, .. } = b;
    let Some(step) = event.step else {
        if event.kind == EventKind::Status {
            let _ = multi.println(format!("· {}", event.message));
        }
        return;
    };
    let bar = bars.entry(step).or_insert_with(|| {
        let bar = multi.add(ProgressBar::new(u64::from(step.weight())));
        bar.set_style(style(false));
        bar.set_prefix(step.title());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    // A computed move may have passed this event's stored percent; the bar never goes back.
    bar.set_position(u64::from(within(step, percent)));
    match event.kind {
        EventKind::StepCompleted => {
            bar.set_style(style(true));
            bar.finish_with_message(event.message.clone());
        }
        EventKind::Log => {
            for line in event.lines() {
                let _ = multi.println(format!("  {line}"));
            }
        }
        EventKind::Warning => {
            let _ = multi.println(format!("  warning: {}", event.message));
        }
        EventKind::Status if event.status == Some(Status::Failed) => {
            bar.abandon_with_message(event.message.clone());
        }
        _ if !bar.is_finished() => bar.set_message(event.message.clone()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devgem_domain::NewEvent;

    #[test]
    fn a_stored_batch_of_output_prints_one_line_per_line_of_output() {
        let event = NewEvent::new(
            EventKind::Log,
            Some(Step::ContainerBuild),
            "added 12 packages\nfound 0 vulnerabilities",
            35,
        )
        .numbered(7, chrono::Utc::now());
        assert_eq!(
            plain_lines(&event),
            [
                "[ 35%] Container build | added 12 packages",
                "[ 35%] Container build | found 0 vulnerabilities",
            ]
        );
    }
}
