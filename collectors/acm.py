"""ACM certificates with their validity."""
from auditbook.collect.spec import Call, ResourceType

ALL_KEY_TYPES = ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096", "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]


def _certificate(cert, _shared):
    cert.update(cert.pop("detail", None) or {})
    return cert


RESOURCE_TYPES = [
    ResourceType(
        name="aws.acm.certificate", service="acm",
        # without Includes, ListCertificates returns RSA_2048 certificates only
        list=Call("list_certificates", "acm:ListCertificates", params={"Includes": {"keyTypes": ALL_KEY_TYPES}},
                  result="CertificateSummaryList"),
        details={"detail": Call("describe_certificate", "acm:DescribeCertificate",
                                params={"CertificateArn": "{CertificateArn}"}, result="Certificate")},
        id="CertificateArn", arn="{CertificateArn}", display="DomainName", normalise=_certificate,
        description="ACM certificates with the DescribeCertificate fields (NotAfter, Status, InUseBy, Type).",
    ),
]
