"""The details the hub writes in its audit rows, as the Chinese audit page and the exports
say them (the store keeps the English; the English page shows it as stored)."""

from __future__ import annotations

import pytest

from province_hub.web.desk_tables import detail_word


@pytest.mark.parametrize(
    ("stored", "zh"),
    [
        ("notice 12; outcome partly_upheld", "公告 12；处理结果 部分成立"),
        ("notice 12; outcome -", "公告 12；处理结果 -"),
        ("assigned to gm-2", "分派给 gm-2"),
        ("note, 25 characters", "备注，25 个字符"),
        ("contact, 8 characters, by phone", "联系记录，8 个字符，方式：电话"),
        ("notice 7", "公告 7"),
        ("notice 7; for the GM hotline", "公告 7；为总经理热线调取"),
        ("3 rows with customer name and phone", "3 行，含客户姓名和电话"),
        ("kind=task priority=high targets=14", "类型 任务，优先级 高，14 个地市"),
        ("answers notice:9 objection of city 620100", "答复地市 620100 对公告 9 的异议"),
        ("4 batches, 2 new", "4 批，其中新批次 2 批"),
        ("role gm_hotline", "岗位 总经理热线"),
        ("enabled", "启用"),
        ("disabled", "停用"),
        ("password reset", "重置密码"),
        ("own password changed", "本人修改密码"),
        ("throttled", "失败次数过多，暂停登录"),
        ("wrong staff id or password", "工号或密码错误"),
        ("HTTP Basic: throttled", "HTTP Basic 认证：失败次数过多，暂停登录"),
        ("HTTP Basic: wrong staff id or password", "HTTP Basic 认证：工号或密码错误"),
        # Anything else (an older hub's wording, a future one) stays as stored.
        ("something new", "something new"),
        ("", ""),
    ],
)
def test_the_hubs_own_audit_details_read_in_chinese(stored: str, zh: str) -> None:
    assert detail_word(stored, "zh") == zh
    assert detail_word(stored, "en") == stored
