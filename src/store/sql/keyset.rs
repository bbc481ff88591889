//! Building the `WHERE` of a list page: only the conditions a request has
//! (so each shape is its own statement the planner can fit to an index),
//! numbered parameters, and the keyset condition after the cursor.

use super::{query, Arg, Dialect, Exec, SqlStore};
use crate::model::page::{Cursor, Page, PageRequest};
use crate::store::StoreError;

/// A list's order: by `time` (when it has one) then `id`, descending when
/// `desc`. The keyset condition and the `ORDER BY` both come from it, so
/// they cannot disagree.
#[derive(Clone, Copy)]
pub(crate) struct Order {
    pub time: Option<&'static str>,
    pub id: &'static str,
    pub desc: bool,
}

/// What a list reads: `select` (`SELECT … FROM table`), in `order`;
/// `operation` names it in errors.
pub(crate) struct Listing<'s> {
    pub select: &'s str,
    pub order: Order,
    pub operation: &'static str,
}

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

    /// `select` (`SELECT … FROM table`) of one page: the conditions so far,
    /// the rows after the request's cursor in `order`, ordered so, and one
    /// row more than the page (to learn whether another follows).
    pub fn page(&mut self, select: &str, page: &'a PageRequest, order: Order) -> String {
        self.after(page.after.as_ref(), order);
        let limit = self.param(Arg::I64(page.fetch()));
        let dir = if order.desc { " DESC" } else { "" };
        let by = match order.time {
            Some(time) => format!("{time}{dir}, {}{dir}", order.id),
            None => format!("{}{dir}", order.id),
        };
        format!("{select}{} ORDER BY {by} LIMIT {limit}", self.sql())
    }

    /// Rows after `cursor` in `order`. A cursor of another list's kind
    /// starts from the top.
    fn after(&mut self, cursor: Option<&'a Cursor>, order: Order) {
        let Order { time, id, desc } = order;
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

impl<D: Dialect> SqlStore<D> {
    /// One list page: `list.select` under `w`'s conditions, after the
    /// request's cursor in `list.order`; each row read by `map`, the next
    /// page's cursor from the last row by `key`.
    pub(crate) async fn page_of<'a, T>(
        &self,
        mut w: Where<'a>,
        list: Listing<'_>,
        page: &'a PageRequest,
        map: fn(&D::Row) -> Result<T, StoreError>,
        key: impl Fn(&T) -> Cursor,
    ) -> Result<Page<T>, StoreError> {
        let Listing {
            select,
            order,
            operation,
        } = list;
        let sql = w.page(select, page, order);
        let found = self
            .d
            .pool()
            .all(&sql, &w.args)
            .await
            .map_err(query(operation))?;
        let items = super::rows::all(&found, map)?;
        Ok(Page::of(items, page, key))
    }
}
