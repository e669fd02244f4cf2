//! Keyset pagination.
//!
//! A list endpoint returns a [`Page`] of items and, when there are more, a [`Cursor`]:
//! an opaque string that encodes the position after the last item (typically its sort
//! key and id). Clients pass it back unchanged to get the next page. Keyset pagination
//! stays fast however deep the client pages, unlike `OFFSET`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The page size used when the client does not ask for one.
pub const DEFAULT_LIMIT: u32 = 50;
/// The largest page a client may ask for.
pub const MAX_LIMIT: u32 = 200;
/// The longest cursor accepted, in bytes (a cursor is a position, not a payload).
const MAX_CURSOR_LEN: usize = 1024;

/// An opaque position in a keyset-ordered list.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(String);

/// Why a cursor could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cursor: it must be a value returned as next_cursor by this list")]
pub struct CursorError;

impl Cursor {
    /// Encodes a position (any serializable key, such as `(created_at, id)`).
    pub fn encode<K: Serialize>(position: &K) -> Self {
        // Serializing plain keys (numbers, strings, ids, timestamps) to JSON cannot fail;
        // if a caller passes something that does, the cursor decodes to an error later.
        let json = serde_json::to_vec(position).unwrap_or_default();
        Self(URL_SAFE_NO_PAD.encode(json))
    }

    /// Decodes the position this cursor was made from.
    pub fn decode<K: DeserializeOwned>(&self) -> Result<K, CursorError> {
        let bytes = URL_SAFE_NO_PAD.decode(&self.0).map_err(|_| CursorError)?;
        serde_json::from_slice(&bytes).map_err(|_| CursorError)
    }

    /// Wraps a cursor string received from a client.
    pub fn from_client(text: impl Into<String>) -> Result<Self, CursorError> {
        let text = text.into();
        if text.is_empty() || text.len() > MAX_CURSOR_LEN {
            return Err(CursorError);
        }
        Ok(Self(text))
    }

    /// The cursor as the client sees it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({})", self.0)
    }
}

/// What a client asks of a list: how many items, and after which position.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PageRequest {
    /// Page size; clamped to `1..=MAX_LIMIT`, default [`DEFAULT_LIMIT`].
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<Cursor>,
}

impl PageRequest {
    /// The first page, with the default size.
    pub fn first() -> Self {
        Self {
            limit: None,
            cursor: None,
        }
    }

    /// The effective page size.
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }

    /// Decodes the position to continue after, if any.
    pub fn after<K: DeserializeOwned>(&self) -> Result<Option<K>, CursorError> {
        self.cursor.as_ref().map(Cursor::decode).transpose()
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first()
    }
}

/// One page of a list.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items, in list order.
    pub items: Vec<T>,
    /// Pass this back as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` fetched rows: fetching one extra row tells
    /// whether there is a next page without a second query. `key` gives the position of
    /// an item.
    pub fn from_overfetch<K: Serialize>(
        mut rows: Vec<T>,
        limit: u32,
        key: impl Fn(&T) -> K,
    ) -> Self {
        let limit = limit as usize;
        let next_cursor = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| Cursor::encode(&key(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    /// Maps the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_look_opaque() {
        let cursor = Cursor::encode(&("2026-11-23T09:00:00Z", 42_u64));
        assert!(!cursor.as_str().contains("2026"));
        let back: (String, u64) = cursor.decode().unwrap();
        assert_eq!(back, ("2026-11-23T09:00:00Z".to_owned(), 42));
    }

    #[test]
    fn tampered_cursors_are_refused() {
        assert_eq!(Cursor::from_client("").unwrap_err(), CursorError);
        assert_eq!(
            Cursor::from_client("x".repeat(2000)).unwrap_err(),
            CursorError
        );
        let junk = Cursor::from_client("!!not-base64!!").unwrap();
        assert_eq!(junk.decode::<u64>().unwrap_err(), CursorError);
        let wrong_shape = Cursor::encode(&"text");
        assert_eq!(wrong_shape.decode::<u64>().unwrap_err(), CursorError);
    }

    #[test]
    fn limits_are_clamped() {
        let mut request = PageRequest::first();
        assert_eq!(request.limit(), DEFAULT_LIMIT);
        request.limit = Some(0);
        assert_eq!(request.limit(), 1);
        request.limit = Some(10_000);
        assert_eq!(request.limit(), MAX_LIMIT);
    }

    #[test]
    fn overfetching_one_row_decides_the_next_cursor() {
        let page = Page::from_overfetch(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(page.next_cursor.unwrap().decode::<i32>().unwrap(), 2);
        let last = Page::from_overfetch(vec![1, 2], 2, |n| *n);
        assert_eq!(last.items, vec![1, 2]);
        assert!(last.next_cursor.is_none());
    }
}
