//! Logging set-up.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global tracing subscriber, writing to stderr. Call once, from the binary;
/// a second call (for example from tests) keeps the first subscriber.
///
/// Every line logged while a request is handled carries the request's span, and with it
/// its `request_id`.
pub fn init(format: LogFormat, filter: &str) {
    // An error means a subscriber is already installed; keep it.
    drop(tracing::subscriber::set_global_default(subscriber(
        format,
        filter,
        std::io::stderr,
    )));
}

/// The subscriber the server logs with, writing to `writer`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: &str,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .flatten_event(true)
                .finish(),
        ),
        LogFormat::Pretty => Box::new(builder.finish()),
    }
}
