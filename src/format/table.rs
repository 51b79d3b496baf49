//! Text tables for people: columns with a head, an alignment and a width,
//! rows of cells. Below every stage (it names no other module), so the
//! stats, weights, score and shards tables line up alike.
//!
//! The widths are computed once, from the columns' [`Width`] and every
//! cell; cells are two spaces apart, padded by characters, never cut. No
//! line ends in spaces: empty cells at the end of a line are left out with
//! their separators, and a left-aligned last cell is not padded.

use std::fmt::Write;

/// Which side of its column a cell keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// How wide a column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// This many characters; a longer cell overflows.
    Fixed(usize),
    /// The widest of the head and the cells, within `min..=max`.
    Fit { min: usize, max: usize },
}

/// A column: its head, alignment and width.
#[derive(Debug, Clone)]
pub struct Column {
    head: String,
    align: Align,
    width: Width,
}

impl Column {
    pub fn left(head: impl Into<String>, width: Width) -> Self {
        Self {
            head: head.into(),
            align: Align::Left,
            width,
        }
    }

    pub fn right(head: impl Into<String>, width: Width) -> Self {
        Self {
            head: head.into(),
            align: Align::Right,
            width,
        }
    }
}

/// Space between two cells.
const GAP: &str = "  ";

/// A table: a head line, then a line per row.
#[derive(Debug, Clone, Default)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: Vec<Column>) -> Self {
        Self {
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells at its end are empty.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The head line and every row, each ending in a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }

    /// Appends [`Table::render`] to `out`.
    pub fn write_to(&self, out: &mut String) {
        let widths = self.widths();
        let head: Vec<&str> = self.columns.iter().map(|c| c.head.as_str()).collect();
        self.line(out, &widths, &head);
        for row in &self.rows {
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            self.line(out, &widths, &cells);
        }
    }

    /// Each column's width, from its [`Width`], its head and its cells.
    fn widths(&self) -> Vec<usize> {
        self.columns
            .iter()
            .enumerate()
            .map(|(i, col)| match col.width {
                Width::Fixed(w) => w,
                Width::Fit { min, max } => self
                    .rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .chain([&col.head])
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
                    .clamp(min, max.max(min)),
            })
            .collect()
    }

    fn line(&self, out: &mut String, widths: &[usize], cells: &[&str]) {
        let cell = |i: usize| cells.get(i).copied().unwrap_or("");
        let last = (0..self.columns.len()).rev().find(|&i| !cell(i).is_empty());
        if let Some(last) = last {
            for (i, col) in self.columns.iter().enumerate().take(last + 1) {
                if i > 0 {
                    out.push_str(GAP);
                }
                let text = cell(i);
                let pad = widths[i].saturating_sub(text.chars().count());
                match col.align {
                    Align::Left if i == last => out.push_str(text),
                    Align::Left => {
                        out.push_str(text);
                        out.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        out.extend(std::iter::repeat_n(' ', pad));
                        out.push_str(text);
                    }
                }
            }
        }
        let _ = writeln!(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up_and_no_line_ends_in_spaces() {
        let mut t = Table::new(vec![
            Column::left("class", Width::Fit { min: 5, max: 256 }),
            Column::right("pixels", Width::Fixed(8)),
            Column::left("", Width::Fixed(0)),
        ]);
        t.row(["background", "1200", ""]);
        t.row(["car", "7", "rare"]);
        assert_eq!(
            t.render(),
            "class         pixels\n\
             background      1200\n\
             car                7  rare\n"
        );
    }

    #[test]
    fn a_fit_column_keeps_its_bounds_and_a_long_cell_overflows() {
        let mut t = Table::new(vec![
            Column::left("n", Width::Fit { min: 2, max: 4 }),
            Column::right("v", Width::Fixed(3)),
        ]);
        t.row(["abcdefg", "12345"]);
        t.row(["é", "1"]);
        assert_eq!(t.render(), "n       v\nabcdefg  12345\né       1\n");
    }

    #[test]
    fn matches_the_formatter_padding() {
        let mut t = Table::new(vec![
            Column::left("a", Width::Fixed(6)),
            Column::right("b", Width::Fixed(11)),
        ]);
        let v = 0.123456f32;
        t.row(["ü".to_string(), format!("{v:.4}")]);
        let want = format!("{:<6}  {:>11}\n{:<6}  {v:>11.4}\n", "a", "b", "ü");
        assert_eq!(t.render(), want);
    }
}
