"""Shield Advanced: the account's subscription and the resources it protects (one record per account;
Shield's API is global, served from us-east-1 whatever region the client names)."""
from auditbook.collect.spec import Call, ResourceType

NOT_SUBSCRIBED = ("ResourceNotFoundException",)  # DescribeSubscription / ListProtections without a subscription


def _account(record: dict, _shared) -> dict:
    subscription = record.get("subscription") or None
    record["subscription"] = subscription
    record["subscribed"] = subscription is not None
    record["auto_renew"] = (subscription or {}).get("AutoRenew") == "ENABLED"
    record["subscription_end"] = (subscription or {}).get("EndTime")
    protections = record.get("protections") or []
    record["protected_arns"] = sorted({p["ResourceArn"] for p in protections if p.get("ResourceArn")})
    return record


RESOURCE_TYPES = [
    ResourceType(
        name="aws.shield.account", service="shield", scope="global", list=None,
        details={
            "subscription": Call("describe_subscription", "shield:DescribeSubscription", result="Subscription",
                                 absent=NOT_SUBSCRIBED),
            "protections": Call("list_protections", "shield:ListProtections", result="Protections", paginate=True,
                                when="subscription", absent=NOT_SUBSCRIBED),
        },
        normalise=_account, tags=None,
        description="The account's Shield Advanced subscription (null: none) with subscribed, auto_renew and "
                    "subscription_end, and protected_arns (the resources its protections cover; read only "
                    "when subscribed).",
    ),
]
