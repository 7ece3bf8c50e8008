//! ECR adapter: what the promotion gates need to know about an image: its scan findings per
//! severity (DescribeImageScanFindings) and when it was pushed (DescribeImages).

use super::map_sdk_error;
use crate::domain::ScanSummary;
use crate::error::AdapterError;
use crate::ports::{Images, StoredImage};
use async_trait::async_trait;
use aws_sdk_ecr::Client;
use aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsError;
use aws_sdk_ecr::types::ImageIdentifier;
use std::collections::BTreeMap;
use time::OffsetDateTime;

const IMAGE_NOT_FOUND: &[&str] = &["RepositoryNotFoundException", "ImageNotFoundException"];

#[derive(Debug, Clone)]
pub struct EcrImages {
    client: Client,
}

impl EcrImages {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The ECR of the account `config` acts in.
    pub fn from_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }
}

fn image(digest: &str) -> ImageIdentifier {
    ImageIdentifier::builder().image_digest(digest).build()
}

#[async_trait]
impl Images for EcrImages {
    async fn scan(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ScanSummary>, AdapterError> {
        let result = self
            .client
            .describe_image_scan_findings()
            .repository_name(repository)
            .image_id(image(digest))
            // the counts come with the first page; the findings themselves are not needed
            .max_results(1)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                if let Some(DescribeImageScanFindingsError::ScanNotFoundException(_)) =
                    e.as_service_error()
                {
                    return Ok(None);
                }
                return Err(map_sdk_error(
                    "DescribeImageScanFindings",
                    e,
                    IMAGE_NOT_FOUND,
                ));
            }
        };
        let status = out
            .image_scan_status()
            .and_then(|s| s.status())
            .map_or_else(|| "UNKNOWN".to_string(), |s| s.as_str().to_string());
        let severity_counts: BTreeMap<String, u32> = out
            .image_scan_findings()
            .and_then(|f| f.finding_severity_counts())
            .map(|counts| {
                counts
                    .iter()
                    .map(|(sev, n)| (sev.as_str().to_string(), u32::try_from(*n).unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(ScanSummary {
            status,
            severity_counts,
        }))
    }

    async fn stored_image(
        &self,
        registry_id: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Option<StoredImage>, AdapterError> {
        let out = match self
            .client
            .describe_images()
            .registry_id(registry_id)
            .repository_name(repository)
            .image_ids(image(digest))
            .send()
            .await
            .map_err(|e| map_sdk_error("DescribeImages", e, IMAGE_NOT_FOUND))
        {
            Ok(out) => out,
            Err(AdapterError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        // DescribeImages answers for the digest asked; anything else is not this image.
        let Some(detail) = out
            .image_details()
            .iter()
            .find(|d| d.image_digest() == Some(digest))
        else {
            return Ok(None);
        };
        Ok(Some(StoredImage {
            pushed_at: detail
                .image_pushed_at()
                .and_then(|t| OffsetDateTime::from_unix_timestamp(t.secs()).ok()),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose
mod tests {
    use super::*;
    use aws_sdk_ecr::config::retry::RetryConfig;
    use aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsOutput;
    use aws_sdk_ecr::operation::describe_images::DescribeImagesOutput;
    use aws_sdk_ecr::types::error::{ImageNotFoundException, ScanNotFoundException};
    use aws_sdk_ecr::types::{
        FindingSeverity, ImageDetail, ImageScanFindings, ImageScanStatus, ScanStatus,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_types::DateTime;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn images(rules: &[&Rule]) -> EcrImages {
        let client = mock_client!(aws_sdk_ecr, RuleMode::Sequential, rules, |c| c
            .retry_config(RetryConfig::disabled()));
        EcrImages::new(client)
    }

    #[tokio::test]
    async fn scan_asks_for_the_digest_and_returns_the_status_and_counts() {
        let rule = mock!(Client::describe_image_scan_findings)
            .match_requests(|r| {
                r.repository_name() == Some("team/checkout")
                    && r.image_id().and_then(|i| i.image_digest()) == Some(DIGEST)
            })
            .then_output(|| {
                DescribeImageScanFindingsOutput::builder()
                    .image_scan_status(
                        ImageScanStatus::builder()
                            .status(ScanStatus::Complete)
                            .build(),
                    )
                    .image_scan_findings(
                        ImageScanFindings::builder()
                            .finding_severity_counts(FindingSeverity::Critical, 2)
                            .finding_severity_counts(FindingSeverity::High, 5)
                            .build(),
                    )
                    .build()
            });
        let got = images(&[&rule])
            .scan("team/checkout", DIGEST)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.status, "COMPLETE");
        assert_eq!(
            got.severity_counts,
            BTreeMap::from([("CRITICAL".to_string(), 2), ("HIGH".to_string(), 5)])
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_image_never_scanned_has_no_summary_and_a_missing_image_is_not_found() {
        let never = mock!(Client::describe_image_scan_findings).then_error(|| {
            DescribeImageScanFindingsError::ScanNotFoundException(
                ScanNotFoundException::builder().message("no scan").build(),
            )
        });
        assert_eq!(images(&[&never]).scan("checkout", DIGEST).await, Ok(None));

        let missing = mock!(Client::describe_image_scan_findings).then_error(|| {
            DescribeImageScanFindingsError::ImageNotFoundException(
                ImageNotFoundException::builder()
                    .message("gone")
                    .meta(
                        aws_sdk_ecr::error::ErrorMetadata::builder()
                            .code("ImageNotFoundException")
                            .build(),
                    )
                    .build(),
            )
        });
        let err = images(&[&missing]).scan("checkout", DIGEST).await;
        assert!(matches!(err, Err(AdapterError::NotFound(_))), "{err:?}");
    }

    #[tokio::test]
    async fn stored_image_reads_the_detail_of_that_digest_in_that_registry() {
        let rule = mock!(Client::describe_images)
            .match_requests(|r| {
                r.registry_id() == Some("123456789012")
                    && r.repository_name() == Some("checkout")
                    && r.image_ids().first().and_then(|i| i.image_digest()) == Some(DIGEST)
            })
            .then_output(|| {
                DescribeImagesOutput::builder()
                    .image_details(
                        ImageDetail::builder()
                            .image_digest(DIGEST)
                            .image_pushed_at(DateTime::from_secs(1_735_898_400))
                            .build(),
                    )
                    .build()
            });
        let got = images(&[&rule])
            .stored_image("123456789012", "checkout", DIGEST)
            .await
            .unwrap();
        assert_eq!(
            got.and_then(|i| i.pushed_at),
            Some(time::macros::datetime!(2025-01-03 10:00:00 UTC))
        );
    }

    #[tokio::test]
    async fn an_image_the_registry_does_not_hold_is_none() {
        let missing = mock!(Client::describe_images).then_error(|| {
            aws_sdk_ecr::operation::describe_images::DescribeImagesError::ImageNotFoundException(
                ImageNotFoundException::builder()
                    .message("no such image")
                    .meta(
                        aws_sdk_ecr::error::ErrorMetadata::builder()
                            .code("ImageNotFoundException")
                            .build(),
                    )
                    .build(),
            )
        });
        let got = images(&[&missing])
            .stored_image("123456789012", "checkout", DIGEST)
            .await
            .unwrap();
        assert_eq!(got, None);
        // an answer about another image is not this one
        let other = mock!(Client::describe_images).then_output(|| {
            DescribeImagesOutput::builder()
                .image_details(ImageDetail::builder().image_digest("sha256:other").build())
                .build()
        });
        let got = images(&[&other])
            .stored_image("123456789012", "checkout", DIGEST)
            .await
            .unwrap();
        assert_eq!(got, None);
    }
}
