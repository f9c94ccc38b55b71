//! Shows a deployment's progress events: a bar per step on a terminal, one plain line per
//! event when piped, or one JSON object per line with `--json`.

use crate::cli::say;
use devgem_domain::{EventKind, ProgressEvent, Status, Step};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};

pub enum Renderer {
    Bars {
        multi: MultiProgress,
        bars: HashMap<Step, ProgressBar>,
    },
    Plain,
    Json,
}

impl Renderer {
    pub fn new(json: bool) -> Self {
        if json {
            Renderer::Json
        } else if std::io::stdout().is_terminal() {
            Renderer::Bars {
                multi: MultiProgress::new(),
                bars: HashMap::new(),
            }
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
            Renderer::Plain => say(format_args!("{}", plain_line(event))),
            Renderer::Bars { multi, bars } => show_bar(multi, bars, event),
        }
    }

    /// Clears the bars so the final lines print cleanly.
    pub fn finish(&mut self) {
        if let Renderer::Bars { bars, .. } = self {
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }

    pub fn is_json(&self) -> bool {
        matches!(self, Renderer::Json)
    }
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

fn show_bar(multi: &MultiProgress, bars: &mut HashMap<Step, ProgressBar>, event: &ProgressEvent) {
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
    let within = event
        .percent
        .saturating_sub(step.start_percent())
        .min(step.weight());
    bar.set_position(u64::from(within));
    match event.kind {
        EventKind::StepCompleted => {
            bar.set_style(style(true));
            bar.finish_with_message(event.message.clone());
        }
        EventKind::Log => {
            let _ = multi.println(format!("  {}", event.message));
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
