//! `/exports`: the CRM lists as CSV and the whole organization as NDJSON, streamed (see
//! [`crate::exports`]).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use edge_tenancy::TenantContext;

use super::client::Client;
use super::error::ApiError;
use super::extract::Query;
use crate::AppState;
use crate::exports::{self, ExportDeps, ExportStream, RecordList};

fn deps(state: &AppState) -> ExportDeps {
    ExportDeps {
        db: state.db.clone(),
        usage: state.usage.clone(),
    }
}

fn attachment(stream: ExportStream, content_type: &'static str, file_name: String) -> Response {
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

async fn csv(
    state: AppState,
    ctx: TenantContext,
    client: Client,
    list: RecordList,
    pairs: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let Client(client) = client;
    let stream = exports::csv(deps(&state), ctx, client, now, list, pairs).await?;
    let file_name = format!("{}-{}.csv", list.name(), now.format("%Y%m%d-%H%M%S"));
    Ok(attachment(stream, "text/csv; charset=utf-8", file_name))
}

macro_rules! csv_route {
    ($name:ident, $list:expr, $doc:literal) => {
        #[doc = $doc]
        pub async fn $name(
            State(state): State<AppState>,
            ctx: TenantContext,
            client: Client,
            Query(pairs): Query<Vec<(String, String)>>,
        ) -> Result<Response, ApiError> {
            csv(state, ctx, client, $list, pairs).await
        }
    };
}

csv_route!(
    prospects,
    RecordList::Prospects,
    "`GET /exports/prospects.csv`: the filters of `GET /prospects`."
);
csv_route!(
    relationships,
    RecordList::Relationships,
    "`GET /exports/relationships.csv`: the filters of `GET /relationships`."
);
csv_route!(
    deals,
    RecordList::Deals,
    "`GET /exports/deals.csv`: the filters of `GET /deals`."
);
csv_route!(
    tickets,
    RecordList::Tickets,
    "`GET /exports/tickets.csv`: the filters of `GET /tickets`."
);
csv_route!(
    activities,
    RecordList::Activities,
    "`GET /exports/activities.csv`: the filters of `GET /activities`."
);

/// `GET /exports/organization`: every row the organization owns, as NDJSON.
pub async fn organization(
    State(state): State<AppState>,
    ctx: TenantContext,
    Client(client): Client,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let org = ctx.org();
    let stream = exports::organization(deps(&state), ctx, client, now).await?;
    let file_name = format!("organization-{org}-{}.ndjson", now.format("%Y%m%d-%H%M%S"));
    Ok(attachment(stream, "application/x-ndjson", file_name))
}
