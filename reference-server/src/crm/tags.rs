//! Tags on CRM records: up to [`MAX_TAGS`] per record, kept as entered on the record and
//! lower-cased in `record_tags` for the `tag=` filter.

use edge_core::{Error, FieldError};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::entities::record_tags;

/// The most tags one record may have.
pub const MAX_TAGS: usize = 20;

/// Trims, drops duplicates (ignoring case) and checks lengths.
pub fn normalize(tags: Vec<String>) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    for (i, tag) in tags.into_iter().enumerate() {
        let tag = tag.trim().to_owned();
        if tag.is_empty() || tag.chars().count() > 64 {
            problems.push(FieldError::new(
                format!("tags[{i}]"),
                "must be 1 to 64 characters",
            ));
        } else if !out.iter().any(|t| t.to_lowercase() == tag.to_lowercase()) {
            out.push(tag);
        }
    }
    if out.len() > MAX_TAGS {
        problems.push(FieldError::new(
            "tags",
            format!("at most {MAX_TAGS} tags per record"),
        ));
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::Validation(problems))
    }
}

/// Replaces a record's rows in `record_tags` (call inside the record's transaction).
pub async fn replace(
    conn: &impl ConnectionTrait,
    org: uuid::Uuid,
    record_type: &str,
    record_id: uuid::Uuid,
    tags: &[String],
) -> Result<(), Error> {
    record_tags::Entity::delete_many()
        .filter(record_tags::Column::OrganizationId.eq(org))
        .filter(record_tags::Column::RecordType.eq(record_type))
        .filter(record_tags::Column::RecordId.eq(record_id))
        .exec(conn)
        .await
        .map_err(Error::internal)?;
    if tags.is_empty() {
        return Ok(());
    }
    let rows = tags.iter().map(|tag| record_tags::ActiveModel {
        organization_id: sea_orm::ActiveValue::Set(org),
        record_type: sea_orm::ActiveValue::Set(record_type.to_owned()),
        tag: sea_orm::ActiveValue::Set(tag.to_lowercase()),
        record_id: sea_orm::ActiveValue::Set(record_id),
    });
    record_tags::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await
        .map_err(Error::internal)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_and_deduplicated() {
        assert_eq!(
            normalize(vec![" VIP ".into(), "vip".into(), "Nairobi".into()]).unwrap(),
            ["VIP", "Nairobi"]
        );
        assert!(normalize(vec![String::new()]).is_err());
        assert!(normalize((0..21).map(|i| format!("t{i}")).collect()).is_err());
    }
}
