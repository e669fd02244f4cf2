//! Media upload, retrieval and download.

use bytes::Bytes;
use serde::Deserialize;

use crate::client::{WhatsAppClient, decode};
use crate::credentials::Credentials;
use crate::error::Error;
use crate::ids::MediaId;

/// `GET /{media_id}`: where to download a media object. The URL is valid for 5 minutes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MediaInfo {
    /// The media id.
    pub id: MediaId,
    /// A download URL, valid for about 5 minutes; needs the bearer token.
    pub url: String,
    /// MIME type.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// SHA-256 of the file.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Size in bytes.
    #[serde(default)]
    pub file_size: Option<u64>,
}

/// A downloaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// The bytes.
    pub bytes: Bytes,
    /// `Content-Type` of the download.
    pub content_type: Option<String>,
}

/// `{base}/{version}/{media_id}?phone_number_id=…`: the number check Meta applies to media.
fn media_url(client: &WhatsAppClient, creds: &Credentials, media_id: &MediaId) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("phone_number_id", creds.phone_number_id().as_str())
        .finish();
    let path: String = url::form_urlencoded::byte_serialize(media_id.as_str().as_bytes()).collect();
    format!("{}?{query}", client.url(creds, &path))
}

impl WhatsAppClient {
    /// Uploads a file for the number in `creds` (`POST /{phone_number_id}/media`). Media is
    /// tied to the uploading number and lasts 30 days: cache ids per tenant number.
    pub async fn upload_media(
        &self,
        creds: &Credentials,
        bytes: impl Into<Bytes>,
        mime_type: &str,
        filename: &str,
    ) -> Result<MediaId, Error> {
        #[derive(Deserialize)]
        struct Uploaded {
            id: MediaId,
        }
        let bytes: Bytes = bytes.into();
        if bytes.is_empty() {
            return Err(Error::invalid("the file to upload is empty"));
        }
        let part = reqwest::multipart::Part::stream(reqwest::Body::from(bytes))
            .file_name(filename.to_owned())
            .mime_str(mime_type)
            .map_err(|_| Error::invalid(format!("{mime_type:?} is not a MIME type")))?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime_type.to_owned())
            .part("file", part);
        let path = format!("{}/media", creds.phone_number_id());
        let builder = self.http().post(self.url(creds, &path)).multipart(form);
        let uploaded: Uploaded = Self::call(builder, creds).await?;
        Ok(uploaded.id)
    }

    /// Gets a fresh download URL and the metadata of `media_id`
    /// (`GET /{media_id}?phone_number_id=…`).
    pub async fn media_info(
        &self,
        creds: &Credentials,
        media_id: &MediaId,
    ) -> Result<MediaInfo, Error> {
        let builder = self.http().get(media_url(self, creds, media_id));
        Self::call(builder, creds).await
    }

    /// Downloads from a media URL with the bearer token (which Meta requires) and our
    /// `User-Agent`. A 404 means the URL went stale: prefer [`WhatsAppClient::download_media`].
    pub async fn download_media_url(
        &self,
        creds: &Credentials,
        url: &str,
    ) -> Result<Downloaded, Error> {
        let builder = Self::authorize(self.http().get(url), creds)?;
        let response = builder
            .send()
            .await
            .map_err(|e| Error::from_transport(&e))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::from_transport(&e))?;
        if !(200..300).contains(&status) {
            return Err(Error::from_response(status, &bytes));
        }
        Ok(Downloaded {
            bytes,
            content_type,
        })
    }

    /// Downloads `media_id`: gets a fresh URL, downloads it, and on a 404 (a stale URL)
    /// gets another URL and tries once more.
    pub async fn download_media(
        &self,
        creds: &Credentials,
        media_id: &MediaId,
    ) -> Result<Downloaded, Error> {
        let info = self.media_info(creds, media_id).await?;
        match self.download_media_url(creds, &info.url).await {
            Err(Error::UnexpectedResponse { status: 404, .. } | Error::Api { status: 404, .. }) => {
                let info = self.media_info(creds, media_id).await?;
                self.download_media_url(creds, &info.url).await
            }
            other => other,
        }
    }

    /// Deletes uploaded media (`DELETE /{media_id}`).
    pub async fn delete_media(
        &self,
        creds: &Credentials,
        media_id: &MediaId,
    ) -> Result<bool, Error> {
        #[derive(Deserialize)]
        struct Success {
            #[serde(default)]
            success: bool,
        }
        let builder = self.http().delete(media_url(self, creds, media_id));
        let (status, body) = Self::execute(Self::authorize(builder, creds)?).await?;
        let s: Success = decode(status, &body)?;
        Ok(s.success)
    }
}
