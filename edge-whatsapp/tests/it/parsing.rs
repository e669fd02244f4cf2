//! Parsing every entry and change into typed, routable events.

use edge_whatsapp::webhook::{
    DeliveryStatus, EventKind, InteractiveReply, MessageContent, ParseError, PricingCategory,
    PricingType, TenantKey, parse_events,
};
use edge_whatsapp::{ErrorClass, MessageId, PhoneNumberId, WabaId};
use serde_json::json;

use crate::support::*;

#[test]
fn every_fixture_parses_into_routable_events() {
    for (name, body) in WEBHOOK_FIXTURES {
        let events = parse_events(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!events.is_empty(), "{name}");
        for event in &events {
            assert!(
                !matches!(event.kind, EventKind::Unknown(_)),
                "{name}: {event:?}"
            );
            assert!(event.routing.phone_number_id.is_some(), "{name}");
            assert!(event.routing.waba_id.is_some(), "{name}");
            assert_eq!(event.routing.field.as_deref(), Some("messages"));
        }
    }
}

#[test]
fn the_inbound_text_keeps_emoji_and_accents() {
    let events = parse_events(INBOUND_TEXT.as_bytes()).unwrap();
    let [event] = events.as_slice() else {
        panic!("one event expected: {events:?}")
    };
    let message = event.as_message().unwrap();
    assert_eq!(
        message.text(),
        Some("Thanks \u{1f64f} could you deliver after 5pm? I'm at the caf\u{e9} until then.")
    );
    assert_eq!(message.from.as_deref(), Some("12025550147"));
    assert_eq!(
        message.from_user_id.as_ref().map(|u| u.as_str()),
        Some("US.1308594726613049851")
    );
    assert_eq!(message.timestamp_secs(), Some(1_795_183_780));
    let contact = message.contact.as_ref().unwrap();
    assert_eq!(contact.name.as_deref(), Some("Dana Whitfield"));
    assert_eq!(
        event.routing.tenant_key(),
        Some(TenantKey::PhoneNumber(PhoneNumberId::new(TENANT_A_PNID)))
    );
    assert!(event.dedup_key().contains(message.id.as_str()));
}

#[test]
fn two_numbers_in_one_batch_yield_events_for_both_tenants() {
    let events = parse_events(TWO_NUMBERS.as_bytes()).unwrap();
    assert_eq!(events.len(), 3, "two inbound texts for A, one status for B");

    let a: Vec<_> = events
        .iter()
        .filter(|e| e.routing.phone_number_id == Some(PhoneNumberId::new(TENANT_A_PNID)))
        .collect();
    assert_eq!(a.len(), 2);
    for e in &a {
        assert_eq!(e.routing.waba_id, Some(WabaId::new(TENANT_A_WABA)));
        assert_eq!(
            e.routing.display_phone_number.as_deref(),
            Some("15550101234")
        );
    }
    let texts: Vec<_> = a.iter().filter_map(|e| e.as_message()?.text()).collect();
    assert_eq!(
        texts,
        ["Also, can you add a sourdough loaf?", "Same order please"]
    );

    let b: Vec<_> = events
        .iter()
        .filter(|e| e.routing.phone_number_id == Some(PhoneNumberId::new(TENANT_B_PNID)))
        .collect();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].routing.waba_id, Some(WabaId::new(TENANT_B_WABA)));
    let status = b[0].as_status().unwrap();
    assert_eq!(status.status, DeliveryStatus::Delivered);
    assert_eq!(status.recipient_id.as_deref(), Some("447700900789"));
    let pricing = status.pricing.as_ref().unwrap();
    assert_eq!(pricing.category, Some(PricingCategory::Marketing));
    assert_eq!(
        status.contact.as_ref().unwrap().name.as_deref(),
        Some("Tom Okafor")
    );

    // De-duplication keys are distinct per item.
    let mut keys: Vec<_> = events.iter().map(|e| e.dedup_key()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 3);
}

#[test]
fn statuses_carry_pricing_callback_data_and_errors() {
    let sent = parse_events(STATUS_SENT.as_bytes()).unwrap();
    let sent = sent[0].as_status().unwrap();
    assert_eq!(sent.status, DeliveryStatus::Sent);
    assert_eq!(
        sent.id,
        MessageId::new("wamid.HBgLMTIwMjU1NTAxNDcVAgARGBIyNDVGMzlCQ0QyRjlCQTE2RDIA")
    );
    assert_eq!(
        sent.biz_opaque_callback_data.as_deref(),
        Some("tenant:acme-bakery;send:01JD8X4N6W2QH5T3KZ7RVB9C0M")
    );
    let pricing = sent.pricing.as_ref().unwrap();
    assert_eq!(pricing.billable, Some(true));
    assert_eq!(pricing.pricing_model.as_deref(), Some("PMP"));
    assert_eq!(pricing.pricing_type, Some(PricingType::Regular));
    assert_eq!(pricing.category, Some(PricingCategory::Utility));
    assert!(sent.errors.is_empty());

    let delivered = parse_events(STATUS_DELIVERED.as_bytes()).unwrap();
    let delivered = delivered[0].as_status().unwrap();
    assert!(delivered.status.supersedes(&sent.status));

    let failed = parse_events(STATUS_FAILED.as_bytes()).unwrap();
    let failed = failed[0].as_status().unwrap();
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert!(failed.pricing.is_none());
    assert!(failed.contact.is_none());
    assert_eq!(failed.errors.len(), 1);
    assert_eq!(failed.errors[0].code, Some(131026));
    assert_eq!(
        failed.errors[0].details.as_deref(),
        Some("Message Undeliverable.")
    );
    assert_eq!(failed.error_class(), Some(ErrorClass::Undeliverable));
    assert_eq!(
        failed.biz_opaque_callback_data.as_deref(),
        Some("tenant:acme-bakery;send:01JD8XB2R0F7TQ1YJ9KM3D5N6P")
    );
}

fn batch_with_messages(messages: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": TENANT_A_WABA,
            "changes": [{
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": { "display_phone_number": "15550101234", "phone_number_id": TENANT_A_PNID },
                    "messages": messages,
                }
            }]
        }]
    }))
    .unwrap()
}

#[test]
fn an_unknown_message_type_is_the_unknown_variant_not_an_error() {
    let body = batch_with_messages(json!([
        { "from": "1", "id": "wamid.1", "timestamp": "1", "type": "hologram", "hologram": { "depth": 3 } },
        { "from": "1", "id": "wamid.2", "timestamp": "2", "type": "text", "text": { "body": "still here" } },
    ]));
    let events = parse_events(&body).unwrap();
    assert_eq!(events.len(), 2);
    let m = events[0].as_message().unwrap();
    match &m.content {
        MessageContent::Unknown { type_name, raw } => {
            assert_eq!(type_name.as_deref(), Some("hologram"));
            assert_eq!(raw["hologram"]["depth"], 3);
        }
        other => panic!("expected Unknown, got {other:?}"),
    }
    assert_eq!(events[1].as_message().unwrap().text(), Some("still here"));
}

#[test]
fn every_inbound_type_is_typed() {
    let body = batch_with_messages(json!([
        { "from": "1", "id": "w1", "type": "image", "image": { "id": "111", "mime_type": "image/jpeg", "sha256": "x", "caption": "cake" } },
        { "from": "1", "id": "w2", "type": "audio", "audio": { "id": "222", "mime_type": "audio/ogg", "voice": true } },
        { "from": "1", "id": "w3", "type": "document", "document": { "id": "333", "filename": "a.pdf" } },
        { "from": "1", "id": "w4", "type": "video", "video": { "id": "444" } },
        { "from": "1", "id": "w5", "type": "sticker", "sticker": { "id": "555", "animated": false } },
        { "from": "1", "id": "w6", "type": "location", "location": { "latitude": -1.28, "longitude": 36.82, "name": "Nairobi" } },
        { "from": "1", "id": "w7", "type": "contacts", "contacts": [{ "name": { "formatted_name": "A" } }] },
        { "from": "1", "id": "w8", "type": "interactive", "interactive": { "type": "button_reply", "button_reply": { "id": "yes", "title": "Yes" } } },
        { "from": "1", "id": "w9", "type": "interactive", "interactive": { "type": "list_reply", "list_reply": { "id": "r1", "title": "Row", "description": "d" } } },
        { "from": "1", "id": "w10", "type": "button", "button": { "payload": "CHANGE", "text": "Change" }, "context": { "from": "15550101234", "id": "wamid.orig" } },
        { "from": "1", "id": "w11", "type": "reaction", "reaction": { "message_id": "wamid.orig", "emoji": "\u{1f44d}" } },
        { "from": "1", "id": "w12", "type": "unsupported", "unsupported": { "type": "edit" }, "errors": [{ "code": 131051, "title": "Message type unknown" }] },
        { "from": "1", "id": "w13", "type": "unknown", "errors": [{ "code": 131051 }] },
        { "from": "1", "id": "w14", "type": "system", "system": { "body": "changed number" } },
        { "from": "1", "id": "w15", "type": "order", "order": { "catalog_id": "c" } },
        { "from": "1", "id": "w16", "type": "request_welcome" },
        { "from": "1", "id": "w17", "type": "interactive", "interactive": { "type": "nfm_reply", "nfm_reply": { "name": "flow", "response_json": "{}" } } },
        { "from": "1", "id": "w18", "type": "text", "text": { "body": 42 } },
    ]));
    let events = parse_events(&body).unwrap();
    let contents: Vec<_> = events
        .iter()
        .map(|e| e.as_message().unwrap().content.clone())
        .collect();
    assert_eq!(contents.len(), 18);
    assert!(
        matches!(&contents[0], MessageContent::Image(m) if m.caption.as_deref() == Some("cake") && m.id.as_ref().unwrap().as_str() == "111")
    );
    assert!(matches!(&contents[1], MessageContent::Audio(m) if m.voice));
    assert!(
        matches!(&contents[2], MessageContent::Document(m) if m.filename.as_deref() == Some("a.pdf"))
    );
    assert!(matches!(&contents[3], MessageContent::Video(_)));
    assert!(matches!(&contents[4], MessageContent::Sticker(_)));
    assert!(matches!(&contents[5], MessageContent::Location(l) if l.latitude == Some(-1.28)));
    assert!(matches!(&contents[6], MessageContent::Contacts(c) if c.len() == 1));
    assert!(
        matches!(&contents[7], MessageContent::Interactive(InteractiveReply::Button { id, .. }) if id == "yes")
    );
    assert!(
        matches!(&contents[8], MessageContent::Interactive(InteractiveReply::List { description: Some(d), .. }) if d == "d")
    );
    assert!(
        matches!(&contents[9], MessageContent::Button { payload: Some(p), .. } if p == "CHANGE")
    );
    let ctx = events[9].as_message().unwrap().context.clone().unwrap();
    assert_eq!(ctx.id, Some(MessageId::new("wamid.orig")));
    assert!(
        matches!(&contents[10], MessageContent::Reaction { emoji: Some(e), .. } if e == "\u{1f44d}")
    );
    assert!(
        matches!(&contents[11], MessageContent::Unsupported { type_name: Some(t) } if t == "edit")
    );
    assert_eq!(
        events[11].as_message().unwrap().errors[0].code,
        Some(131051)
    );
    assert!(matches!(
        &contents[12],
        MessageContent::Unsupported { type_name: None }
    ));
    assert!(matches!(&contents[13], MessageContent::System(_)));
    assert!(matches!(&contents[14], MessageContent::Order(_)));
    assert!(matches!(&contents[15], MessageContent::RequestWelcome));
    assert!(matches!(
        &contents[16],
        MessageContent::Interactive(InteractiveReply::Flow { .. })
    ));
    // A known type with an unreadable object is kept, not dropped.
    assert!(
        matches!(&contents[17], MessageContent::Unknown { type_name: Some(t), .. } if t == "text")
    );
}

#[test]
fn other_fields_and_bsuid_only_users_are_kept_and_routed_by_waba() {
    let body = serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": TENANT_B_WABA,
            "changes": [
                { "field": "message_template_status_update", "value": { "event": "APPROVED", "message_template_name": "x" } },
                { "field": "messages", "value": {
                    "metadata": { "phone_number_id": TENANT_B_PNID },
                    "contacts": [{ "profile": { "name": "Priya" }, "user_id": "GB.123" }],
                    "messages": [{ "from_user_id": "GB.123", "id": "w1", "type": "text", "text": { "body": "hi" } }],
                    "errors": [{ "code": 131000, "title": "Something went wrong" }]
                } }
            ]
        }]
    }))
    .unwrap();
    let events = parse_events(&body).unwrap();
    assert_eq!(events.len(), 3);
    match &events[0].kind {
        EventKind::Unknown(u) => assert_eq!(u.raw["event"], "APPROVED"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        events[0].routing.tenant_key(),
        Some(TenantKey::Waba(WabaId::new(TENANT_B_WABA)))
    );
    let m = events[1].as_message().unwrap();
    assert_eq!(m.from, None);
    assert_eq!(m.contact.as_ref().unwrap().name.as_deref(), Some("Priya"));
    match &events[2].kind {
        EventKind::Error(e) => assert!(e.class().is_retryable()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn non_notifications_are_errors_not_panics() {
    assert!(matches!(parse_events(b""), Err(ParseError::Json(_))));
    assert!(matches!(
        parse_events(b"\xff\xfe"),
        Err(ParseError::Json(_))
    ));
    assert_eq!(parse_events(b"42"), Err(ParseError::NotANotification));
    assert_eq!(
        parse_events(b"{\"entry\":{}}"),
        Err(ParseError::NotANotification)
    );
    assert_eq!(parse_events(b"{\"entry\":[]}"), Ok(vec![]));
}
