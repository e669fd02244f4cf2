//! Mentions in chat messages.
//!
//! The syntax is `@` followed by a member's email: `thanks @amina@duka.example!`. Trailing
//! punctuation is not part of the email and case does not matter. A mention notifies the
//! member only if they are an active member who may see the room: the other member of a
//! direct conversation, or for a record's room a member who may read that record (under
//! `own` record visibility a `user` sees only their own records). The sender is never
//! notified of their own mention, and a member mentioned twice is notified once.

use edge_core::{Error, OrgId, SessionId, UserId};
use edge_tenancy::{PlanLimits, TenantContext};
use sea_orm::{ColumnTrait as _, DatabaseConnection, EntityTrait as _, QueryFilter as _};
use serde_json::json;
use uuid::Uuid;

use super::{Kind, NewNotification, active_role};
use crate::chat::Room;
use crate::db::db_err;
use crate::entities::users;

/// The emails a message mentions, lower-cased, in order, without repeats.
pub fn mentioned_emails(body: &str) -> Vec<String> {
    let mut emails: Vec<String> = Vec::new();
    for word in body.split_whitespace() {
        let Some(rest) = word.strip_prefix('@') else {
            continue;
        };
        let email = rest
            .trim_end_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        let Some((local, domain)) = email.split_once('@') else {
            continue;
        };
        if local.is_empty() || !domain.contains('.') || domain.contains('@') {
            continue;
        }
        if !emails.contains(&email) {
            emails.push(email);
        }
    }
    emails
}

/// The notifications a message `body` from `sender` in `room` gives its mentioned members.
pub async fn notices(
    db: &DatabaseConnection,
    org: OrgId,
    sender: Uuid,
    room: Room,
    message_id: Uuid,
    body: &str,
) -> Result<Vec<NewNotification>, Error> {
    let emails = mentioned_emails(body);
    if emails.is_empty() {
        return Ok(Vec::new());
    }
    let people = crate::tenant_scope::cross_tenant(
        users::Entity::find()
            .filter(users::Column::Email.is_in(emails))
            .all(db),
    )
    .await
    .map_err(db_err)?;
    let sender_name = crate::tenant_scope::cross_tenant(users::Entity::find_by_id(sender).one(db))
        .await
        .map_err(db_err)?
        .map(|u| u.name)
        .unwrap_or_else(|| "A member".to_owned());
    let mut out = Vec::new();
    for person in people {
        if person.id == sender {
            continue;
        }
        let Some(role) = active_role(db, org, person.id).await.map_err(db_err)? else {
            continue;
        };
        let sees = match room {
            Room::Dm(peer) => peer == person.id,
            record => {
                let ctx = TenantContext::for_user(
                    org,
                    UserId::from_uuid(person.id),
                    SessionId::from_uuid(Uuid::nil()),
                    role,
                    PlanLimits::default(),
                );
                match crate::chat::authorize(db, &ctx, record).await {
                    Ok(()) => true,
                    Err(Error::NotFound { .. } | Error::Forbidden(_)) => false,
                    Err(other) => return Err(other),
                }
            }
        };
        if !sees {
            continue;
        }
        let name = match room {
            Room::Dm(_) => "a direct message".to_owned(),
            record => format!("{} {}", record.kind(), record.id()),
        };
        out.push(NewNotification {
            user_id: person.id,
            kind: Kind::Mention,
            title: format!("{sender_name} mentioned you in {name}"),
            body: body.chars().take(500).collect(),
            subject: Some(("chat_message".to_owned(), message_id)),
            data: json!({
                "room": room.kind(),
                "room_id": match room { Room::Dm(_) => sender, record => record.id() },
                "message_id": message_id,
                "sender_id": sender,
            }),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_at_and_an_email() {
        assert_eq!(
            mentioned_emails("thanks @Amina@Duka.example! and @bob@x.io, @amina@duka.example"),
            ["amina@duka.example", "bob@x.io"]
        );
        assert!(mentioned_emails("mail me at amina@duka.example or @here").is_empty());
    }
}
