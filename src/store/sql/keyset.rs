//! Building the `WHERE` of a list page: only the conditions a request has
//! (so each shape is its own statement the planner can fit to an index),
//! numbered parameters, and the keyset condition after the cursor.

use super::Arg;
use crate::model::page::Cursor;

/// Conditions and their arguments, `$1…` in the order pushed.
#[derive(Default)]
pub(crate) struct Where<'a> {
    clauses: Vec<String>,
    pub args: Vec<Arg<'a>>,
}

impl<'a> Where<'a> {
    /// The next parameter's placeholder, bound to `arg`.
    pub fn param(&mut self, arg: Arg<'a>) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    pub fn and(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// `column = arg`, when there is an arg.
    pub fn eq(&mut self, column: &str, arg: Option<Arg<'a>>) {
        if let Some(arg) = arg {
            let p = self.param(arg);
            self.and(format!("{column} = {p}"));
        }
    }

    /// Rows after `cursor` in a list ordered by `(time, id)` — `time` may be
    /// `None` for lists ordered by id alone — descending when `desc`. A
    /// cursor of another list's kind starts from the top.
    pub fn after(&mut self, cursor: Option<&'a Cursor>, time: Option<&str>, id: &str, desc: bool) {
        let cmp = if desc { "<" } else { ">" };
        match (cursor, time) {
            (Some(Cursor::Id(after)), None) => {
                let p = self.param(Arg::I64(*after));
                self.and(format!("{id} {cmp} {p}"));
            }
            (Some(Cursor::Key(after)), None) => {
                let p = self.param(Arg::Text(after));
                self.and(format!("{id} {cmp} {p}"));
            }
            (Some(Cursor::AtId(at, after)), Some(time)) => {
                let (t, i) = (self.param(Arg::Time(*at)), self.param(Arg::I64(*after)));
                self.and(format!(
                    "({time} {cmp} {t} OR ({time} = {t} AND {id} {cmp} {i}))"
                ));
            }
            (Some(Cursor::AtKey(at, after)), Some(time)) => {
                let (t, k) = (self.param(Arg::Time(*at)), self.param(Arg::Text(after)));
                self.and(format!(
                    "({time} {cmp} {t} OR ({time} = {t} AND {id} {cmp} {k}))"
                ));
            }
            _ => {}
        }
    }

    /// ` WHERE a AND b`, or nothing.
    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}
