//! The S3 adapter: uploads handed out as presigned URLs, ranged and streamed
//! reads, and writes of any size (multipart past one part) without holding
//! a whole file in memory.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

use crate::{Error, Result};

/// Multipart part size (S3's minimum is 5 MiB for all parts but the last).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

fn s3_error<E: std::error::Error + Send + Sync + 'static, R: std::fmt::Debug + Send + Sync + 'static>(
    e: aws_sdk_s3::error::SdkError<E, R>,
) -> Error {
    Error::Internal(aws_sdk_s3::error::DisplayErrorContext(e).to_string())
}

/// An object as it is now: another upload to the same key is another
/// version (the imports bucket keeps them).
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    pub size: u64,
    /// `None` in a bucket without versioning.
    pub version_id: Option<String>,
}

#[derive(Clone)]
pub struct Files {
    client: Client,
    bucket: String,
}

impl Files {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Files {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A URL anyone can PUT the object to, for `expires`.
    pub async fn presign_put(&self, key: &str, expires: Duration) -> Result<String> {
        let config = PresigningConfig::expires_in(expires).map_err(Error::internal)?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(s3_error)?;
        Ok(req.uri().to_string())
    }

    /// A URL anyone can download the object from, for `expires`.
    pub async fn presign_get(&self, key: &str, expires: Duration) -> Result<String> {
        let config = PresigningConfig::expires_in(expires).map_err(Error::internal)?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(s3_error)?;
        Ok(req.uri().to_string())
    }

    /// The object's size, or `None` if there is no such object.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        Ok(self.head(key).await?.map(|v| v.size))
    }

    /// The object's size and version, or `None` if there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<Version>> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => Ok(Some(Version {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                version_id: out.version_id().filter(|v| *v != "null").map(str::to_string),
            })),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(e) => Err(s3_error(e)),
        }
    }

    /// Bytes `start..end` of the object (fewer at its end); of `version`
    /// when given, whatever was uploaded to the key since.
    pub async fn read_range(&self, key: &str, version: Option<&str>, start: u64, end: u64) -> Result<Vec<u8>> {
        if end <= start {
            return Ok(Vec::new());
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .range(format!("bytes={start}-{}", end - 1))
            .send()
            .await
            .map_err(s3_error)?;
        let body = out.body.collect().await.map_err(Error::internal)?;
        Ok(body.into_bytes().to_vec())
    }

    /// A small object whole (report parts, samples).
    pub async fn get(&self, key: &str) -> Result<Vec<u8>> {
        let body = self.stream(key, None).await?.collect().await.map_err(Error::internal)?;
        Ok(body.into_bytes().to_vec())
    }

    /// The object as a stream, read as it arrives; `version` as for `read_range`.
    pub async fn stream(&self, key: &str, version: Option<&str>) -> Result<ByteStream> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
            .map_err(s3_error)?;
        Ok(out.body)
    }

    pub async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }

    /// Keys under `prefix`, in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(s3_error)?;
            keys.extend(out.contents().iter().filter_map(|o| o.key().map(str::to_string)));
            match out.next_continuation_token {
                Some(t) if out.is_truncated == Some(true) => token = Some(t),
                _ => return Ok(keys),
            }
        }
    }

    /// A writer for a new object of any size.
    pub fn writer(&self, key: &str, content_type: &str) -> Upload {
        Upload {
            files: self.clone(),
            key: key.to_string(),
            content_type: content_type.to_string(),
            upload_id: None,
            buffer: Vec::new(),
            parts: Vec::new(),
        }
    }
}

/// An object written in parts as it is produced: one PutObject when small,
/// a multipart upload otherwise. Holds at most one part in memory.
pub struct Upload {
    files: Files,
    key: String,
    content_type: String,
    upload_id: Option<String>,
    buffer: Vec<u8>,
    parts: Vec<CompletedPart>,
}

impl Upload {
    /// Each part is one allocation of exactly [`PART_BYTES`], filled, sent
    /// and freed before the next: the allocator hands the same block back,
    /// so memory stays flat however many parts a file has (a buffer grown
    /// by doubling and split left a little more behind with every part).
    pub async fn write(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            if self.buffer.capacity() < PART_BYTES {
                self.buffer.reserve_exact(PART_BYTES - self.buffer.len());
            }
            let take = (PART_BYTES - self.buffer.len()).min(data.len());
            self.buffer.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buffer.len() == PART_BYTES {
                let part = std::mem::take(&mut self.buffer);
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Vec<u8>) -> Result<()> {
        let s3 = &self.files.client;
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let out = s3
                    .create_multipart_upload()
                    .bucket(&self.files.bucket)
                    .key(&self.key)
                    .content_type(&self.content_type)
                    .send()
                    .await
                    .map_err(s3_error)?;
                let id = out.upload_id.ok_or_else(|| Error::internal("S3 gave no upload id"))?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = self.parts.len() as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(&self.files.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(s3_error)?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build(),
        );
        Ok(())
    }

    /// Drops what was written: the multipart upload, if one was begun, is aborted.
    pub async fn abort(self) -> Result<()> {
        if let Some(upload_id) = &self.upload_id {
            self.files
                .client
                .abort_multipart_upload()
                .bucket(&self.files.bucket)
                .key(&self.key)
                .upload_id(upload_id)
                .send()
                .await
                .map_err(s3_error)?;
        }
        Ok(())
    }

    pub async fn finish(mut self) -> Result<()> {
        let Some(upload_id) = self.upload_id.clone() else {
            let body = std::mem::take(&mut self.buffer);
            return self.files.put(&self.key, body, &self.content_type).await;
        };
        if !self.buffer.is_empty() {
            let last = std::mem::take(&mut self.buffer);
            self.send_part(last).await?;
        }
        self.files
            .client
            .complete_multipart_upload()
            .bucket(&self.files.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }
}

/// An S3 event's object key: URL-encoded, with `+` for a space.
pub fn decode_event_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_are_decoded() {
        assert_eq!(
            decode_event_key("imports/p1/My+List+%282%29.csv"),
            "imports/p1/My List (2).csv"
        );
        assert_eq!(decode_event_key("imports/p1/a%2Bb.csv"), "imports/p1/a+b.csv");
        assert_eq!(decode_event_key("imports/p1/Zo%C3%AB.csv"), "imports/p1/Zoë.csv");
    }
}
