//! Pages of a list: a capped limit and an opaque cursor naming the last row
//! of the previous page by its sort key, so the next page is a keyset read
//! (`WHERE key < cursor ORDER BY key LIMIT n`) whose cost never depends on
//! how deep the client has paged, and rows written meanwhile neither shift
//! nor repeat a page.

use chrono::{DateTime, Utc};

use super::limits::list_limit;
use super::{text, Invalid};

/// A row's place in its list's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Lists ordered by a numeric id.
    Id(i64),
    /// Lists ordered by a text id (workspaces).
    Key(String),
    /// Lists ordered by an instant, ties broken by a numeric id (runs).
    AtId(DateTime<Utc>, i64),
    /// Lists ordered by an instant, ties broken by a text id (delegations).
    AtKey(DateTime<Utc>, String),
}

/// Which kind of cursor a list takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyset {
    Id,
    Key,
    AtId,
    AtKey,
}

impl Cursor {
    pub fn keyset(&self) -> Keyset {
        match self {
            Cursor::Id(_) => Keyset::Id,
            Cursor::Key(_) => Keyset::Key,
            Cursor::AtId(..) => Keyset::AtId,
            Cursor::AtKey(..) => Keyset::AtKey,
        }
    }

    /// The text a client sends back as `cursor`. Opaque to clients; here it
    /// is the sort key spelled out, times in microseconds.
    pub fn encode(&self) -> String {
        match self {
            Cursor::Id(id) => format!("i{id}"),
            Cursor::Key(key) => format!("k{key}"),
            Cursor::AtId(at, id) => format!("t{}.{id}", at.timestamp_micros()),
            Cursor::AtKey(at, key) => format!("u{}.{key}", at.timestamp_micros()),
        }
    }

    /// A cursor from a request (`field` names it in the refusal).
    pub fn parse(field: &'static str, text: &str) -> Result<Cursor, Invalid> {
        let bad = || Invalid::new(field, format!("{text:?} is not a cursor this API gave out"));
        let (kind, rest) = text.split_at_checked(1).ok_or_else(bad)?;
        let number = |s: &str| s.parse::<i64>().map_err(|_| bad());
        let instant = |s: &str| DateTime::<Utc>::from_timestamp_micros(number(s)?).ok_or_else(bad);
        let key = |s: &str| {
            text::id(field, s).map_err(|_| bad())?;
            Ok::<_, Invalid>(s.to_string())
        };
        match kind {
            "i" => Ok(Cursor::Id(number(rest)?)),
            "k" => Ok(Cursor::Key(key(rest)?)),
            "t" | "u" => {
                let (at, tail) = rest.split_once('.').ok_or_else(bad)?;
                let at = instant(at)?;
                if kind == "t" {
                    Ok(Cursor::AtId(at, number(tail)?))
                } else {
                    Ok(Cursor::AtKey(at, key(tail)?))
                }
            }
            _ => Err(bad()),
        }
    }
}

/// What a client asked for: how many, and after which row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// From `?limit=&cursor=` of a list ordered by `keyset`: the limit
    /// capped as [`list_limit`] says, the cursor one this list gave out.
    pub fn new(limit: Option<u32>, cursor: Option<&str>, keyset: Keyset) -> Result<Self, Invalid> {
        let after = cursor
            .filter(|c| !c.is_empty())
            .map(|c| Cursor::parse("cursor", c))
            .transpose()?;
        if let Some(c) = &after {
            if c.keyset() != keyset {
                return Err(Invalid::new("cursor", "is a cursor of another list"));
            }
        }
        Ok(Self {
            limit: list_limit(limit)?,
            after,
        })
    }

    /// The first `limit` rows.
    pub fn first(limit: u32) -> Self {
        Self { limit, after: None }
    }

    /// Rows to fetch: one more than the page, to learn whether another follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// One page of rows and the cursor of the next, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// The page from up to [`PageRequest::fetch`] rows in list order.
    pub fn of(mut rows: Vec<T>, request: &PageRequest, key: impl Fn(&T) -> Cursor) -> Self {
        let limit = request.limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more { rows.last().map(key) } else { None };
        Page { items: rows, next }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_was_not_given_out() {
        let at = DateTime::<Utc>::from_timestamp_micros(1_780_000_000_123_456).unwrap();
        for c in [
            Cursor::Id(42),
            Cursor::Id(-1),
            Cursor::Key("agent-1.a:b@c".into()),
            Cursor::AtId(at, 7),
            Cursor::AtKey(at, "task.42".into()),
        ] {
            assert_eq!(Cursor::parse("cursor", &c.encode()), Ok(c));
        }
        for bad in [
            "",
            "x1",
            "i",
            "iabc",
            "i99999999999999999999",
            "t12",
            "t1.x",
            "k",
            "k a",
            "t99999999999999999999.1",
            "é",
        ] {
            assert_eq!(
                Cursor::parse("cursor", bad).unwrap_err().field,
                "cursor",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_page_knows_whether_another_follows() {
        let request = PageRequest::new(Some(2), None, Keyset::Id).unwrap();
        assert_eq!(request.fetch(), 3);
        let page = Page::of(vec![9, 8, 7], &request, |n| Cursor::Id(*n));
        assert_eq!((page.items, page.next), (vec![9, 8], Some(Cursor::Id(8))));
        let last = Page::of(vec![9, 8], &request, |n| Cursor::Id(*n));
        assert_eq!(last.next, None);
        assert_eq!(
            PageRequest::new(Some(0), None, Keyset::Id)
                .unwrap_err()
                .field,
            "limit"
        );
        assert_eq!(
            PageRequest::new(None, Some("nope"), Keyset::Id)
                .unwrap_err()
                .field,
            "cursor"
        );
        assert_eq!(
            PageRequest::new(None, Some(""), Keyset::Id).unwrap().after,
            None
        );
        assert_eq!(
            PageRequest::new(None, Some("kw"), Keyset::Id)
                .unwrap_err()
                .field,
            "cursor"
        );
    }
}
