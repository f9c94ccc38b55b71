//! Cheap patterns for detectors: a literal prefilter plus a small regex run only on the lines
//! around each literal hit.
//!
//! Why: `devgem analyze` runs in a fresh process, where compiling a few dozen full `regex`
//! automata would cost more than the whole analysis. A [`Pat`] compiles its `regex-lite`
//! expression (tens of microseconds) only the first time one of its literals occurs in a file,
//! and then matches only a few lines, so both compile and match costs stay tiny whatever the
//! size of the repository.

use regex_lite::Regex;
use std::sync::OnceLock;

/// A pattern with required literals. At least one literal must occur in any match; the regex
/// is applied to the window from the start of the literal's line to the end of the line
/// `SPAN_LINES` lines below, so a match may span up to that many lines.
pub struct Pat {
    lits: &'static [&'static str],
    src: &'static str,
    re: OnceLock<Option<Regex>>,
}

const SPAN_LINES: usize = 3;

/// A match: absolute offsets in the searched text.
#[derive(Debug, Clone, Copy)]
pub struct M<'t> {
    text: &'t str,
    start: usize,
    end: usize,
}

impl<'t> M<'t> {
    pub fn as_str(&self) -> &'t str {
        &self.text[self.start..self.end]
    }
    pub fn start(&self) -> usize {
        self.start
    }
    pub fn end(&self) -> usize {
        self.end
    }
}

/// Capture groups of one match (group 0 is the whole match).
#[derive(Debug, Clone)]
pub struct Caps<'t> {
    text: &'t str,
    spans: Vec<Option<(usize, usize)>>,
}

impl<'t> Caps<'t> {
    pub fn get(&self, i: usize) -> Option<M<'t>> {
        self.spans.get(i).copied().flatten().map(|(start, end)| M {
            text: self.text,
            start,
            end,
        })
    }
}

impl Pat {
    pub const fn new(lits: &'static [&'static str], src: &'static str) -> Pat {
        Pat {
            lits,
            src,
            re: OnceLock::new(),
        }
    }

    fn regex(&self) -> Option<&Regex> {
        self.re.get_or_init(|| Regex::new(self.src).ok()).as_ref()
    }

    /// The windows of `text` worth matching, in order and without overlap.
    fn windows(&self, text: &str) -> Vec<(usize, usize)> {
        if self.lits.is_empty() {
            return vec![(0, text.len())];
        }
        let bytes = text.as_bytes();
        let mut starts: Vec<usize> = vec![];
        for lit in self.lits {
            for (i, _) in text.match_indices(lit) {
                starts.push(i);
            }
        }
        if starts.is_empty() {
            return vec![];
        }
        starts.sort_unstable();
        let mut out: Vec<(usize, usize)> = vec![];
        for i in starts {
            let start = bytes[..i]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
            let mut end = i;
            for _ in 0..SPAN_LINES {
                match bytes[end..].iter().position(|b| *b == b'\n') {
                    Some(p) => end += p + 1,
                    None => {
                        end = bytes.len();
                        break;
                    }
                }
            }
            match out.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => out.push((start, end)),
            }
        }
        out
    }

    /// All matches, with absolute offsets.
    pub fn captures_iter<'t>(&self, text: &'t str) -> std::vec::IntoIter<Caps<'t>> {
        self.captures_vec(text).into_iter()
    }

    fn captures_vec<'t>(&self, text: &'t str) -> Vec<Caps<'t>> {
        let windows = self.windows(text);
        if windows.is_empty() {
            return vec![];
        }
        let Some(re) = self.regex() else {
            return vec![];
        };
        let mut out: Vec<Caps<'t>> = vec![];
        let mut last_end = 0usize;
        for (ws, we) in windows {
            for c in re.captures_iter(&text[ws..we]) {
                let spans: Vec<Option<(usize, usize)>> = (0..c.len())
                    .map(|i| c.get(i).map(|m| (ws + m.start(), ws + m.end())))
                    .collect();
                let Some(Some((s, _))) = spans.first().copied() else {
                    continue;
                };
                // Windows can overlap a previous match's end: skip repeats.
                if s < last_end {
                    continue;
                }
                last_end = spans[0].map_or(s, |(_, e)| e.max(s + 1));
                out.push(Caps { text, spans });
            }
        }
        out
    }

    /// The first match.
    pub fn captures<'t>(&self, text: &'t str) -> Option<Caps<'t>> {
        let windows = self.windows(text);
        if windows.is_empty() {
            return None;
        }
        let re = self.regex()?;
        for (ws, we) in windows {
            if let Some(c) = re.captures(&text[ws..we]) {
                let spans = (0..c.len())
                    .map(|i| c.get(i).map(|m| (ws + m.start(), ws + m.end())))
                    .collect();
                return Some(Caps { text, spans });
            }
        }
        None
    }

    /// Whether it matches anywhere.
    pub fn is_match(&self, text: &str) -> bool {
        let windows = self.windows(text);
        if windows.is_empty() {
            return false;
        }
        let Some(re) = self.regex() else {
            return false;
        };
        windows
            .into_iter()
            .any(|(ws, we)| re.is_match(&text[ws..we]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static P: Pat = Pat::new(&["listen"], r"listen\((\d+)\)");
    static MULTI: Pat = Pat::new(&[".listen"], r"\.listen\(\s*\{([^}]*)\}");

    #[test]
    fn offsets_are_absolute_and_matches_unique() {
        let text = "a\nb\napp.listen(3000)\nc listen(4000) listen(5000)\n";
        let caps: Vec<Caps> = P.captures_iter(text).collect();
        let ports: Vec<&str> = caps
            .iter()
            .filter_map(|c| c.get(1))
            .map(|m| m.as_str())
            .collect();
        assert_eq!(ports, ["3000", "4000", "5000"]);
        let m = caps[0].get(1).expect("group");
        assert_eq!(&text[m.start()..m.end()], "3000");
        assert!(!P.is_match("nothing here"));
    }

    #[test]
    fn matches_may_span_a_few_lines() {
        let text = "f.listen({\n  port: 3000,\n});\n";
        let c = MULTI.captures(text).expect("match");
        assert!(c.get(1).expect("group").as_str().contains("port: 3000"));
    }
}
