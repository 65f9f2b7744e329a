//! A small plain-text table for the CLI's reports: a header, a rule, aligned columns (numbers
//! right-aligned), widths counted in characters so that `µs` lines up.

/// Column alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

#[derive(Clone, Debug)]
pub struct Table {
    headers: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
    indent: usize,
}

impl Table {
    /// A table with these column headers; every column starts left-aligned.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            align: vec![Align::Left; headers.len()],
            rows: Vec::new(),
            indent: 2,
        }
    }

    /// Right-aligns the columns from `first` on (the numeric ones, by convention last).
    pub fn right_from(mut self, first: usize) -> Table {
        for a in self.align.iter_mut().skip(first) {
            *a = Align::Right;
        }
        self
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, every line indented and ending in a newline.
    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut s = " ".repeat(self.indent);
            for (i, c) in cells.iter().enumerate() {
                let pad = widths[i].saturating_sub(c.chars().count());
                let last = i + 1 == n;
                match self.align[i] {
                    Align::Left if last => s.push_str(c),
                    Align::Left => {
                        s.push_str(c);
                        s.push_str(&" ".repeat(pad));
                    }
                    Align::Right => {
                        s.push_str(&" ".repeat(pad));
                        s.push_str(c);
                    }
                }
                if !last {
                    s.push_str("  ");
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.headers);
        let total: usize = widths.iter().sum::<usize>() + 2 * n.saturating_sub(1);
        out.push_str(&" ".repeat(self.indent));
        out.push_str(&"-".repeat(total));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// A duration given in microseconds, in the unit that keeps it readable: `812.4 µs`, `3.21 ms`,
/// `1.204 s`.
pub fn fmt_us(us: f64) -> String {
    if !us.is_finite() {
        return "-".into();
    }
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.3} s", us / 1_000_000.0)
    }
}

/// A plain number of microseconds for percentile columns: one decimal below 10 000, none above.
pub fn fmt_us_plain(us: f64) -> String {
    if !us.is_finite() {
        "-".into()
    } else if us < 10_000.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_by_characters() {
        let mut t = Table::new(&["node", "time"]).right_from(1);
        t.row(vec!["a".into(), "1.0 µs".into()]);
        t.row(vec!["longer".into(), "10.25 ms".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "  node        time");
        assert_eq!(lines[1], "  ----------------");
        assert_eq!(lines[2], "  a         1.0 µs");
        assert_eq!(lines[3], "  longer  10.25 ms");
    }

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(fmt_us(812.44), "812.4 µs");
        assert_eq!(fmt_us(3210.0), "3.21 ms");
        assert_eq!(fmt_us(1_204_000.0), "1.204 s");
        assert_eq!(fmt_us(f64::NAN), "-");
    }
}
