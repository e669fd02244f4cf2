//! Wire shapes of every send type, asserted against the requests FakeGraph recorded.

use edge_core::{Country, Msisdn};
use edge_whatsapp::fake::FakeGraph;
use edge_whatsapp::message::{
    ButtonSubType, ContactCard, Content, Interactive, InteractiveHeader, ListRow, ListSection,
    Location, MarkAsRead, Media, MediaSource, Parameter, Reaction, ReplyButton, SendMessage,
    Template, Text,
};
use edge_whatsapp::{Credentials, Error, UserId, WhatsAppClient};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::support::*;

async fn fake() -> (FakeGraph, WhatsAppClient, Credentials) {
    let fake = FakeGraph::builder()
        .number(TENANT_A_PNID, TENANT_A_WABA, "15550101234")
        .start()
        .await
        .unwrap();
    let client = fake.client().unwrap();
    let creds = Credentials::new(TENANT_A_PNID, SecretString::from("token-a"));
    (fake, client, creds)
}

/// Sends each message and returns the recorded bodies, in order.
async fn recorded(messages: Vec<SendMessage>) -> Vec<Value> {
    let (fake, client, creds) = fake().await;
    for m in &messages {
        let response = m.send(&client, &creds).await.unwrap();
        assert!(
            response
                .message_id()
                .unwrap()
                .as_str()
                .starts_with("wamid.")
        );
    }
    assert!(fake.unmatched().is_empty());
    fake.message_requests()
}

#[tokio::test]
async fn text_matches_the_fixture() {
    let sent = recorded(vec![SendMessage::new(
        "+12025550147",
        Text::new("Hi Dana, we can deliver after 5pm today. Reply YES to confirm."),
    )])
    .await;
    let expected: Value = serde_json::from_str(SEND_TEXT_REQUEST).unwrap();
    assert_eq!(sent, vec![expected]);
}

#[tokio::test]
async fn a_named_template_with_header_buttons_and_callback_data_matches_the_fixture() {
    let template = Template::new("order_shipped_v2", "en_US")
        .header(vec![Parameter::image(MediaSource::id("1479035216842207"))])
        .body(vec![
            Parameter::named("customer_name", "Dana"),
            Parameter::named("order_id", "A-1042"),
            Parameter::named("eta", "Friday, Nov 20"),
        ])
        .button(ButtonSubType::Url, 0, vec![Parameter::text("A-1042")])
        .button(
            ButtonSubType::QuickReply,
            1,
            vec![Parameter::payload("CHANGE_DELIVERY:A-1042")],
        );
    let sent = recorded(vec![
        SendMessage::new("+12025550147", template)
            .biz_opaque_callback_data("tenant:acme-bakery;send:01JD8X4N6W2QH5T3KZ7RVB9C0M"),
    ])
    .await;
    let expected: Value = serde_json::from_str(SEND_TEMPLATE_REQUEST).unwrap();
    assert_eq!(sent, vec![expected]);
}

#[tokio::test]
async fn positional_templates_and_other_parameter_types() {
    let template = Template::new("payment_due", "sw")
        .body(vec![
            Parameter::text("Amina"),
            Parameter::currency("KES 1,250.00", "KES", 1_250_000),
            Parameter::date_time("1 Dec 2026"),
        ])
        .header(vec![Parameter::document(
            MediaSource::link("https://example.com/invoice.pdf"),
            Some("invoice.pdf".into()),
        )])
        .button(
            ButtonSubType::CopyCode,
            0,
            vec![Parameter::coupon_code("KARIBU10")],
        );
    let sent = recorded(vec![SendMessage::new("+254712345678", template)]).await;
    assert_eq!(
        sent[0]["template"],
        json!({
            "name": "payment_due",
            "language": { "code": "sw" },
            "components": [
                { "type": "body", "parameters": [
                    { "type": "text", "text": "Amina" },
                    { "type": "currency", "currency": { "fallback_value": "KES 1,250.00", "code": "KES", "amount_1000": 1_250_000 } },
                    { "type": "date_time", "date_time": { "fallback_value": "1 Dec 2026" } },
                ] },
                { "type": "header", "parameters": [
                    { "type": "document", "document": { "link": "https://example.com/invoice.pdf", "filename": "invoice.pdf" } },
                ] },
                { "type": "button", "sub_type": "copy_code", "index": "0", "parameters": [
                    { "type": "coupon_code", "coupon_code": "KARIBU10" },
                ] },
            ]
        })
    );
}

#[tokio::test]
async fn media_by_id_and_link_with_captions() {
    let sent = recorded(vec![
        SendMessage::new(
            "+12025550147",
            Media::image(MediaSource::id("111")).caption("Your cake"),
        ),
        SendMessage::new(
            "+12025550147",
            Media::document(MediaSource::link("https://example.com/r.pdf?v=2"))
                .caption("Receipt")
                .filename("receipt.pdf"),
        ),
        SendMessage::new("+12025550147", Media::audio(MediaSource::id("222"))),
        SendMessage::new(
            "+12025550147",
            Media::video(MediaSource::link("https://example.com/v.mp4")).caption("How to"),
        ),
        SendMessage::new("+12025550147", Media::sticker(MediaSource::id("333"))),
    ])
    .await;
    let shapes: Vec<_> = sent
        .iter()
        .map(|s| (s["type"].clone(), s[s["type"].as_str().unwrap()].clone()))
        .collect();
    assert_eq!(
        shapes,
        vec![
            (
                json!("image"),
                json!({ "id": "111", "caption": "Your cake" })
            ),
            (
                json!("document"),
                json!({ "link": "https://example.com/r.pdf?v=2", "caption": "Receipt", "filename": "receipt.pdf" })
            ),
            (json!("audio"), json!({ "id": "222" })),
            (
                json!("video"),
                json!({ "link": "https://example.com/v.mp4", "caption": "How to" })
            ),
            (json!("sticker"), json!({ "id": "333" })),
        ]
    );
}

#[tokio::test]
async fn interactive_buttons_and_lists() {
    let buttons = Interactive::buttons(
        "Deliver after 5pm?",
        vec![ReplyButton::new("yes", "Yes"), ReplyButton::new("no", "No")],
    )
    .header(InteractiveHeader::Image(MediaSource::id("444")))
    .footer("Acme Bakery");
    let list = Interactive::list(
        "Pick a loaf",
        "Menu",
        vec![
            ListSection::new(vec![ListRow::new("sour", "Sourdough").description("Daily")])
                .title("Bread"),
            ListSection::new(vec![ListRow::new("muffin", "Muffin")]).title("Sweet"),
        ],
    )
    .header(InteractiveHeader::Text("Today".into()));
    let sent = recorded(vec![
        SendMessage::new("+12025550147", buttons),
        SendMessage::new("+12025550147", list),
    ])
    .await;
    assert_eq!(
        sent[0]["interactive"],
        json!({
            "type": "button",
            "header": { "type": "image", "image": { "id": "444" } },
            "body": { "text": "Deliver after 5pm?" },
            "footer": { "text": "Acme Bakery" },
            "action": { "buttons": [
                { "type": "reply", "reply": { "id": "yes", "title": "Yes" } },
                { "type": "reply", "reply": { "id": "no", "title": "No" } },
            ] }
        })
    );
    assert_eq!(
        sent[1]["interactive"],
        json!({
            "type": "list",
            "header": { "type": "text", "text": "Today" },
            "body": { "text": "Pick a loaf" },
            "action": { "button": "Menu", "sections": [
                { "title": "Bread", "rows": [{ "id": "sour", "title": "Sourdough", "description": "Daily" }] },
                { "title": "Sweet", "rows": [{ "id": "muffin", "title": "Muffin" }] },
            ] }
        })
    );
}

#[tokio::test]
async fn reaction_location_contacts_reply_context_bsuid_msisdn_and_raw() {
    let kenyan = Msisdn::parse("0712 345 678", Country::Kenya).unwrap();
    let sent = recorded(vec![
        SendMessage::new("+12025550147", Reaction::new("wamid.in1", "\u{1f44d}")),
        SendMessage::new("+12025550147", Reaction::remove("wamid.in1")),
        SendMessage::new(
            "+12025550147",
            Location::new(-1.2921, 36.8219).name("Acme Bakery").address("Moi Ave, Nairobi"),
        ),
        SendMessage::new(
            "+12025550147",
            vec![ContactCard::new("Acme Support")
                .names("Acme", "Support")
                .phone("+254712345678", Some("WORK"), Some("254712345678"))
                .email("help@acme.example", None)
                .url("https://acme.example", Some("WORK"))
                .company("Acme Bakery")],
        ),
        SendMessage::new("+12025550147", Text::new("See https://acme.example").preview_url(true))
            .reply_to("wamid.in1"),
        SendMessage::new(UserId::new("US.1308594726613049851"), Text::new("hi")),
        SendMessage::new(&kenyan, Text::new("Habari")),
        SendMessage::new(
            "+12025550147",
            Content::Raw {
                type_name: "interactive".into(),
                payload: json!({ "type": "cta_url", "body": { "text": "Open" }, "action": { "name": "cta_url", "parameters": { "display_text": "Go", "url": "https://acme.example" } } }),
            },
        ),
    ])
    .await;
    assert_eq!(
        sent[0]["reaction"],
        json!({ "message_id": "wamid.in1", "emoji": "\u{1f44d}" })
    );
    assert_eq!(
        sent[1]["reaction"],
        json!({ "message_id": "wamid.in1", "emoji": "" })
    );
    assert_eq!(
        sent[2]["location"],
        json!({ "latitude": -1.2921, "longitude": 36.8219, "name": "Acme Bakery", "address": "Moi Ave, Nairobi" })
    );
    assert_eq!(
        sent[3]["contacts"],
        json!([{
            "name": { "formatted_name": "Acme Support", "first_name": "Acme", "last_name": "Support" },
            "phones": [{ "phone": "+254712345678", "type": "WORK", "wa_id": "254712345678" }],
            "emails": [{ "email": "help@acme.example" }],
            "urls": [{ "url": "https://acme.example", "type": "WORK" }],
            "org": { "company": "Acme Bakery" },
        }])
    );
    assert_eq!(sent[4]["context"], json!({ "message_id": "wamid.in1" }));
    assert_eq!(
        sent[4]["text"],
        json!({ "preview_url": true, "body": "See https://acme.example" })
    );
    assert_eq!(sent[5]["recipient"], "US.1308594726613049851");
    assert!(sent[5].get("to").is_none());
    assert_eq!(sent[6]["to"], "+254712345678");
    assert_eq!(sent[7]["type"], "interactive");
    assert_eq!(sent[7]["interactive"]["type"], "cta_url");
    for s in &sent {
        assert_eq!(s["messaging_product"], "whatsapp");
    }
}

#[tokio::test]
async fn mark_as_read_with_typing_indicator() {
    let (fake, client, creds) = fake().await;
    assert!(
        MarkAsRead::new("wamid.in1")
            .send(&client, &creds)
            .await
            .unwrap()
    );
    assert!(
        MarkAsRead::new("wamid.in2")
            .typing_indicator()
            .send(&client, &creds)
            .await
            .unwrap()
    );
    assert_eq!(
        fake.message_requests(),
        vec![
            json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.in1" }),
            json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.in2", "typing_indicator": { "type": "text" } }),
        ]
    );
}

#[test]
fn local_validation_follows_meta_limits() {
    let invalid = |m: SendMessage| matches!(m.to_json(), Err(Error::InvalidRequest { .. }));
    let to = "+12025550147";
    assert!(invalid(SendMessage::new(
        to,
        Media::audio(MediaSource::id("1")).caption("no")
    )));
    assert!(invalid(SendMessage::new(
        to,
        Media::image(MediaSource::id("1")).filename("a.png")
    )));
    assert!(invalid(SendMessage::new(
        to,
        Media::image(MediaSource::link("ftp://x/y"))
    )));
    assert!(invalid(SendMessage::new(
        to,
        Interactive::buttons("b", vec![])
    )));
    assert!(invalid(SendMessage::new(
        to,
        Interactive::buttons(
            "b",
            (0..4)
                .map(|i| ReplyButton::new(i.to_string(), "t"))
                .collect()
        )
    )));
    assert!(invalid(SendMessage::new(
        to,
        Interactive::buttons(
            "b",
            vec![ReplyButton::new("id", "a title that is too long")]
        )
    )));
    assert!(invalid(SendMessage::new(
        to,
        Interactive::list(
            "b",
            "Menu",
            vec![ListSection::new(
                (0..11).map(|i| ListRow::new(i.to_string(), "r")).collect()
            )]
        )
    )));
    assert!(invalid(SendMessage::new(
        to,
        Interactive::list(
            "b",
            "Menu",
            vec![ListSection::new(vec![ListRow::new("r", "r")])]
        )
        .header(InteractiveHeader::Image(MediaSource::id("1")))
    )));
    assert!(invalid(SendMessage::new(
        to,
        Template::new("t", "en").body(vec![Parameter::named("a", "x"), Parameter::text("y")])
    )));
    assert!(invalid(SendMessage::new(to, Location::new(91.0, 0.0))));
    assert!(invalid(SendMessage::new(to, Vec::<ContactCard>::new())));
    assert!(!invalid(SendMessage::new(
        to,
        Template::new("t", "en").body(vec![Parameter::text("x"), Parameter::text("y")])
    )));
}
