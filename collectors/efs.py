"""EFS file systems: encryption at rest (and who manages the key), the file-system policy (does it refuse
clients that do not use TLS) and the automatic backup policy."""
from auditbook.collect.spec import Call, ResourceType
from collectors.keys import encryption_facts, kms_key_call
from collectors.policies import denies_insecure_transport, policy_document

MOUNT = ("elasticfilesystem:clientmount",)  # a Deny covering ClientMount refuses the connection itself


def _file_system(fs, _shared):
    fs.update(encryption_facts(fs.get("Encrypted"), fs.get("KmsKeyId"), fs.get("kms_key")))
    doc, _malformed = policy_document(fs.get("policy"))
    fs["tls_only_policy"] = denies_insecure_transport(doc, MOUNT)
    fs["backup_status"] = (fs.get("backup_policy") or {}).get("Status") or "DISABLED"
    return fs


def _detail(method, action, result, absent=()):
    return Call(method, action, params={"FileSystemId": "{FileSystemId}"}, result=result, absent=tuple(absent))


RESOURCE_TYPES = [
    ResourceType(
        name="aws.efs.file_system", service="efs",
        list=Call("describe_file_systems", "elasticfilesystem:DescribeFileSystems", result="FileSystems"),
        details={
            "kms_key": kms_key_call("KmsKeyId"),
            "policy": _detail("describe_file_system_policy", "elasticfilesystem:DescribeFileSystemPolicy", "Policy",
                              ["PolicyNotFound"]),
            "backup_policy": _detail("describe_backup_policy", "elasticfilesystem:DescribeBackupPolicy",
                                     "BackupPolicy", ["PolicyNotFound"]),
        },
        id="FileSystemId", arn="{FileSystemArn}", display="Name || FileSystemId",
        normalise=_file_system,
        description="EFS file systems: Encrypted, encryption (off / on with which key), kms_customer_managed, "
                    "tls_only_policy (the file-system policy denies every principal ClientMount when "
                    "aws:SecureTransport is false; no policy: false), backup_status (ENABLED, ENABLING, DISABLED, "
                    "DISABLING; no backup policy: DISABLED).",
    ),
]
