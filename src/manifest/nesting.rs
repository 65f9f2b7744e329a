//! How deeply a manifest's text nests, read from the text before any parser sees it.
//!
//! libyaml (under serde_norway) spends time proportional to the current nesting on every token,
//! so a 100,000-deep YAML document took minutes to refuse, and PyYAML's composer recurses once
//! per level. [`check`] refuses a text nested deeper than the limit in one linear pass, so no
//! parser is ever handed one. It follows the parts of YAML (JSON included) that decide nesting:
//! flow brackets, block indentation and `- `/`? ` entries, quoted and block scalars, plain
//! scalars and comments. On valid YAML it never counts more levels than the tree has (so it
//! refuses nothing the tree's own check would accept); it may count fewer, by at most half (a
//! block sequence written at its key's indentation is not counted), which the tree's check, made
//! while the tree is built, then catches. The pure-Python runtime runs the same algorithm
//! (`python/remotemedia/_pure/nesting.py`), so both refuse the same texts at the same place.

/// Where a text first nests deeper than allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooDeep {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The nesting reached there.
    pub depth: usize,
}

struct Scan {
    limit: usize,
    /// Open flow collections (`[`, `{`).
    flow: usize,
    /// Columns of the open block collections, innermost last.
    blocks: Vec<usize>,
    /// The quoted scalar being read (`"` or `'`), across lines.
    quote: Option<char>,
    /// Lines indented more than this column (and blank lines) belong to a block scalar or to a
    /// multi-line plain scalar and are skipped; -1: every line.
    skip_above: Option<i64>,
    /// A node may start here.
    expect: bool,
    /// Inside a plain (unquoted) scalar.
    plain: bool,
    /// Where the current node started (a mapping's column, once its `:` is seen).
    token: usize,
    line: usize,
}

impl Scan {
    fn depth(&self) -> usize {
        self.blocks.len() + self.flow
    }

    fn too_deep(&self, column: usize) -> Result<(), TooDeep> {
        if self.depth() > self.limit {
            return Err(TooDeep { line: self.line, column: column + 1, depth: self.depth() });
        }
        Ok(())
    }

    /// A block collection whose entries start at `col`: a new level unless it continues the
    /// innermost one.
    fn block_at(&mut self, col: usize) -> Result<(), TooDeep> {
        if self.blocks.last().is_none_or(|&top| col > top) {
            self.blocks.push(col);
            self.too_deep(col)?;
        }
        Ok(())
    }

    fn innermost(&self) -> i64 {
        self.blocks.last().map_or(-1, |&c| c as i64)
    }

    fn line(&mut self, chars: &[char]) -> Result<(), TooDeep> {
        let mut i = 0;
        if self.quote.is_none() && self.flow == 0 {
            // A new line in block context: its indentation closes the deeper block collections.
            let indent = chars.iter().take_while(|&&c| c == ' ').count();
            let rest = &chars[indent..];
            if rest.is_empty() || rest[0] == '#' {
                return Ok(());
            }
            if let Some(col) = self.skip_above {
                if indent as i64 > col {
                    return Ok(());
                }
                self.skip_above = None;
            }
            let marker = |s: &str| chars.len() >= 3 && chars[..3].iter().copied().eq(s.chars()) && chars.get(3).is_none_or(|&c| c == ' ' || c == '\t');
            if marker("---") || marker("...") {
                self.blocks.clear();
                i = 3;
            } else if indent == 0 && rest[0] == '%' {
                return Ok(()); // a directive
            } else {
                while self.blocks.last().is_some_and(|&top| top > indent) {
                    self.blocks.pop();
                }
                i = indent;
            }
            self.expect = true;
            self.plain = false;
        }
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if let Some(q) = self.quote {
                if q == '"' && c == '\\' {
                    i += 2;
                    continue;
                }
                if c == q {
                    if q == '\'' && next == Some('\'') {
                        i += 2;
                        continue;
                    }
                    self.quote = None;
                    self.expect = false;
                }
                i += 1;
                continue;
            }
            if c == ' ' || c == '\t' {
                i += 1;
                continue;
            }
            if c == '#' && (i == 0 || chars[i - 1] == ' ' || chars[i - 1] == '\t') {
                break; // a comment
            }
            let ends_indicator = |n: Option<char>| n.is_none_or(|n| n == ' ' || n == '\t' || (self.flow > 0 && ",[]{}".contains(n)));
            if self.plain {
                if self.flow > 0 && ",[]{}".contains(c) {
                    self.plain = false; // the scalar ends here; the indicator is read below
                } else if c == ':' && ends_indicator(next) {
                    self.plain = false;
                    self.mapping_value()?;
                    i += 1;
                    continue;
                } else {
                    i += 1;
                    continue;
                }
            }
            match c {
                '[' | '{' => {
                    self.token = i;
                    self.flow += 1;
                    self.too_deep(i)?;
                    self.expect = true;
                }
                ']' | '}' => {
                    self.flow = self.flow.saturating_sub(1);
                    self.expect = false;
                }
                ',' if self.flow > 0 => self.expect = true,
                '"' | '\'' if self.expect => {
                    self.token = i;
                    self.quote = Some(c);
                }
                '-' if self.flow == 0 && self.expect && ends_indicator(next) => self.block_at(i)?,
                '?' if self.expect && ends_indicator(next) => {
                    if self.flow == 0 {
                        self.block_at(i)?;
                    }
                }
                ':' if !self.expect || ends_indicator(next) => {
                    if self.expect && self.flow == 0 {
                        self.block_at(i)?; // the value of an explicit `? key`
                    } else if !self.expect {
                        self.mapping_value()?;
                    }
                    self.expect = true;
                }
                '|' | '>' if self.expect && self.flow == 0 => {
                    // A block scalar: its header ends the line, its content is the more indented lines.
                    self.skip_above = Some(self.innermost());
                    return Ok(());
                }
                '&' | '!' | '*' if self.expect => {
                    // An anchor or tag (a node follows) or an alias (a whole node).
                    while i + 1 < chars.len() && chars[i + 1] != ' ' && chars[i + 1] != '\t' && !(self.flow > 0 && ",[]{}".contains(chars[i + 1])) {
                        i += 1;
                    }
                    self.expect = c != '*';
                    self.token = i + 1;
                }
                _ => {
                    self.token = i;
                    self.plain = true;
                    self.expect = false;
                }
            }
            i += 1;
        }
        if self.flow == 0 && self.quote.is_none() {
            if self.plain {
                // A plain scalar goes on over the lines indented more than its collection.
                self.skip_above = Some(self.innermost());
            }
            self.plain = false;
        }
        Ok(())
    }

    /// The `:` of a mapping entry whose key started at `self.token`.
    fn mapping_value(&mut self) -> Result<(), TooDeep> {
        if self.flow == 0 {
            self.block_at(self.token)?;
        }
        self.expect = true;
        Ok(())
    }
}

/// As [`check`], for JSON text: only brackets outside strings count (JSON has no block
/// structure, comments or unquoted strings), so the scan is exact and needs no YAML rules.
pub fn check_json(text: &str, limit: usize) -> Result<(), TooDeep> {
    let (mut depth, mut line, mut column) = (0usize, 1usize, 0usize);
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        column += 1;
        if c == '\n' {
            line += 1;
            column = 0;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth > limit {
                    return Err(TooDeep { line, column, depth });
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a text whose lists and mappings nest deeper than `limit` (the top-level collection
/// is level 1), naming the first place that does.
pub fn check(text: &str, limit: usize) -> Result<(), TooDeep> {
    let mut s = Scan { limit, flow: 0, blocks: Vec::new(), quote: None, skip_above: None, expect: true, plain: false, token: 0, line: 0 };
    let mut chars = Vec::new();
    for line in text.split('\n') {
        s.line += 1;
        chars.clear();
        chars.extend(line.strip_suffix('\r').unwrap_or(line).chars());
        s.line(&chars)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(text: &str) -> usize {
        (1..100).find(|&l| check(text, l).is_ok()).unwrap_or(100)
    }

    #[test]
    fn counts_flow_and_block_levels_as_the_tree_has_them() {
        assert_eq!(depth("a: 1\n"), 1);
        assert_eq!(depth("{\"a\": [1, {\"b\": [[2]]}]}"), 5);
        assert_eq!(depth("nodes:\n  - id: a\n    params: {x: [1]}\n  - id: b\n"), 5);
        assert_eq!(depth("- - - x\n"), 3);
        assert_eq!(depth("a:\n  b:\n    c: 1\nd: 2\n"), 3);
        // Brackets inside quoted, plain, block scalars and comments do not count.
        assert_eq!(depth("a: \"[[[[\"\nb: '{{{'' [['\nc: x[[[y\nd: |\n  [[[[\n  {{{\ne: 1 # [[[[\n"), 1);
        assert_eq!(depth("a: it's [[[\nb: [don't, \"]]\"]\n"), 2);
        // A plain scalar continued on more indented lines.
        assert_eq!(depth("- a\n  - b\n  [[[\n"), 1);
    }

    #[test]
    fn json_counts_brackets_outside_strings() {
        let json_depth = |t: &str| (1..100).find(|&l| check_json(t, l).is_ok()).unwrap_or(100);
        assert_eq!(json_depth("{\"a\": [1, {\"b\": [[2]]}], \"s\": \"[[[\\\"[[\"}"), 5);
        assert_eq!(check_json("{\n [[[", 3), Err(TooDeep { line: 2, column: 4, depth: 4 }));
    }

    #[test]
    fn deep_texts_are_refused_where_they_get_too_deep() {
        let flow = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(check(&flow, 64), Err(TooDeep { line: 1, column: 4 + 63, depth: 65 }));
        let block = format!("a:\n  {}x\n", "- ".repeat(100_000));
        assert_eq!(check(&block, 64), Err(TooDeep { line: 2, column: 3 + 2 * 63, depth: 65 }));
        assert!(check(&format!("{}{}", "[".repeat(64), "]".repeat(64)), 64).is_ok());
    }
}
