"""The demo's alert channels (`make demo`, `make cluster`): connections the DAGs read, and the
local receiver (``crawlops_dev.alert_receiver``, started by ``stack.start_channels``) standing
in for the services behind them."""

from __future__ import annotations

import json
import os
from pathlib import Path

CHANNELS_PORT = int(os.environ.get("CRAWLOPS_CHANNELS_PORT", "9098"))
CHANNEL_MESSAGES = "channel-messages.jsonl"


def demo_channels() -> dict[str, str]:
    """The demo's alert channels, all answered by a local receiver (``crawlops_dev.alert_receiver``):
    the crawl team's DingTalk robot (the default), the product team's robot and a Feishu group
    through Apprise; routes send the product objects' errors to the product team (both
    channels, @mentioning its lead) and every DE alert to Feishu too. A connection or route set
    in the environment wins."""
    local = f"http://127.0.0.1:{CHANNELS_PORT}"

    def robot(token: str) -> str:
        return json.dumps({"conn_type": "dingtalk", "host": local, "password": token,
                           "extra": {"secret": f"SEC-{token}"}})  # fmt: skip

    routes = [
        {"name": "product team", "crawl_objects": ["product_detail", "product_review"],
         "levels": ["ERROR", "CRITICAL"], "channels": ["crawl_dingtalk_product", "crawl_feishu"],
         "owner": "product team", "at_mobiles": ["13800000000"]},
        {"name": "DE desk", "marketplaces": ["DE"], "channels": ["crawl_dingtalk", "crawl_feishu"], "owner": "DE desk"},
    ]  # fmt: skip
    feishu = {"conn_type": "apprise", "extra": {"config": [{"path": f"json://127.0.0.1:{CHANNELS_PORT}/feishu"}]}}
    return {
        "AIRFLOW_CONN_CRAWL_DINGTALK": robot("demo-crawl-team"),
        "AIRFLOW_CONN_CRAWL_DINGTALK_PRODUCT": robot("demo-product-team"),
        "AIRFLOW_CONN_CRAWL_FEISHU": json.dumps(feishu),
        "CRAWLOPS__ALERTS__ROUTES": json.dumps(routes),
    }


def summary(home: Path) -> str:
    return (f"alert channels (two DingTalk robots and a Feishu group, stand-ins on :{CHANNELS_PORT}): "
            f"what they received is in {home / CHANNEL_MESSAGES}")  # fmt: skip
