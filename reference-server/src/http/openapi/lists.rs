//! The query parameters of a CRM list, written from its [`ListSpec`]: the same constant
//! `crm::list` parses the query with, so the document names exactly the filters, sort
//! fields and searches the list accepts.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Required, Schema};

use crate::crm::list::ListSpec;

/// The query parameters of the list `spec`: with `paged`, a page of it (`limit` and
/// `cursor`); without, every row (exports).
pub fn parameters(spec: &ListSpec, paged: bool) -> Vec<Parameter> {
    let mut params = Vec::new();
    if paged {
        params.push(param(
            "limit",
            "Page size, 1 to 200 (default 50).",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(200))
                .build(),
        ));
        params.push(param(
            "cursor",
            "The previous page's `next_cursor`.",
            text(),
        ));
    }
    let sorts: Vec<String> = spec
        .sorts
        .iter()
        .flat_map(|s| [s.name.to_owned(), format!("-{}", s.name)])
        .collect();
    params.push(param(
        "sort",
        &format!(
            "The field to sort by, `-` in front for descending (default `{}`).",
            spec.default_sort
        ),
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(sorts))
            .build(),
    ));
    if spec.search_column.is_some() {
        let phone = if spec.phone_column.is_some() {
            "; a whole phone number, in any usual form, matches the main phone exactly"
        } else {
            ""
        };
        params.push(param(
            "q",
            &format!("Case-insensitive search, at least 2 characters{phone}."),
            text(),
        ));
    }
    if spec.owner_column.is_some() {
        params.push(param("owner_id", "A member's id, or `me`.", text()));
    }
    if spec.tag_kind.is_some() {
        params.push(param("tag", "Only records with this tag.", text()));
    }
    for (name, description) in [
        (
            "created_after",
            "Created at or after this time (RFC 3339, or a date).",
        ),
        (
            "created_before",
            "Created before this time (RFC 3339, or a date).",
        ),
    ] {
        params.push(param(
            name,
            description,
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .build(),
        ));
    }
    for filter in spec.filters {
        params.push(param(
            filter,
            "A filter of this list (see the README for its values).",
            text(),
        ));
    }
    if spec.custom_fields.is_some() {
        params.push(param(
            "cf.<key>",
            "Any custom field of the organization as `cf.<key>=<value>` (the keys are in \
             `GET /organization/settings`); a key that is not defined is refused with 422.",
            text(),
        ));
    }
    params
}

fn param(name: &str, description: &str, schema: impl Into<Schema>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema.into()))
        .build()
}

fn text() -> Schema {
    ObjectBuilder::new().schema_type(Type::String).into()
}
