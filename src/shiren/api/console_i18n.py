"""The console's zh-CN texts: English is the source (and the fallback); ``t(text)`` looks a text
up when the signed-in user chose 中文.  A test checks that every ``t("…")`` in the templates
has a translation here."""

from __future__ import annotations

from collections.abc import Callable

LANG_COOKIE = "shiren_console_lang"
LANGS = ("en", "zh-CN")

ZH: dict[str, str] = {
    "review console": "复核控制台",
    "Skip to content": "跳到正文",
    "Sign out": "退出登录",
    "Review queue": "复核队列",
    "Subjects": "用户",
    "Audit log": "审计日志",
    "Dashboard": "数据看板",
    "Users": "控制台账号",
    "Times are UTC. Everything you do here is written to the tenant's audit log.": (
        "时间均为 UTC。您在此处的所有操作都会写入本机构的审计日志。"
    ),
    "Sign in": "登录",
    "Staff sign-in for risk and compliance. Lender API keys do not work here.": (
        "风控与合规人员登录。机构 API 密钥不能用于此处。"
    ),
    "Username": "用户名",
    "Password": "密码",
    "Status": "状态",
    "Subject reference": "用户编号",
    "exact reference": "完整编号",
    "Filter": "筛选",
    "Queued": "入队时间",
    "Subject ref": "用户编号",
    "Purpose": "用途",
    "Reasons": "原因",
    "Liveness": "活体",
    "Match": "比对",
    "Open case": "打开案件",
    "failed": "未通过",
    "passed": "通过",
    "Start a demo session": "开始演示会话",
    "opens the borrower capture page for a test subject": "为测试用户打开采集页面",
    "Reference photo of the person at the camera": "摄像头前本人的参考照片",
    "Liveness level": "活体检测等级",
    "← Queue": "← 返回队列",
    "Evidence": "证据",
    "Check decision": "核验结论",
    "Liveness score": "活体分数",
    "Match score": "比对分数",
    "against threshold": "阈值",
    "(higher = more alike)": "（越高越相似）",
    "Policy version": "策略版本",
    "Purpose · level": "用途 · 级别",
    "Challenge and timings": "动作挑战与时间",
    "Session opened": "会话开启",
    "Decided": "判定时间",
    "Capture length": "采集时长",
    "Colour flash": "炫彩序列",
    "Actions asked": "要求的动作",
    "Action": "动作",
    "From (ms)": "开始（毫秒）",
    "To (ms)": "结束（毫秒）",
    "Quarantined images": "隔离保存的图像",
    "ID card": "身份证",
    "The reference portrait was cut from the borrower's ID card. The card photos were not kept "
    "and no value read from them is shown here: only the checks the card went through.": (
        "参照人像取自借款人的身份证。证件照片未保存，此处不显示从中识别出的任何信息，"
        "只显示证件经过的核验。"
    ),
    "Checks of the ID card at enrolment": "注册时对身份证的核验",
    "Check": "核验项",
    "not applicable": "不适用",
    "None. This deployment keeps no capture images: frames are turned into scores in memory "
    "and dropped.": "无。本部署不保存采集图像：视频帧在内存中转为分数后即丢弃。",
    "Decision": "复核决定",
    "Outcome": "结论",
    "Approve": "通过",
    "Reject": "拒绝",
    "Reason": "理由",
    "— choose —": "— 请选择 —",
    "Explain (required; stored only as a hash — no personal data)": (
        "说明（必填；仅保存其哈希值——请勿填写个人信息）"
    ),
    "Record decision": "提交决定",
    "can look at cases but not decide them.": "可以查看案件，但不能作出决定。",
    "Search": "搜索",
    "Subject reference (starts with)": "用户编号（前缀）",
    "Created": "创建时间",
    "Erased": "删除时间",
    "Checks": "核验次数",
    "Identity data": "身份信息",
    "Consent records": "同意记录",
    "Erasure and audit trail": "删除与审计轨迹",
    "Verify chain": "校验哈希链",
    "Seq": "序号",
    "When": "时间",
    "Event": "事件",
    "Staff": "操作人员",
    "Subject": "用户",
    "Details": "详情",
    "Hash": "哈希",
    "← Newer": "← 较新",
    "Older →": "较早 →",
    "Period": "时间范围",
    "Show": "显示",
    "checks": "次核验",
    "sent to review": "转人工复核",
    "attack signals": "攻击信号",
    "lock-outs": "锁定",
    "Volumes by decision": "按结论统计的核验量",
    "Pass rate": "通过率",
    "Failure reasons": "失败原因",
    "Attack signals (liveness.*)": "攻击信号（liveness.*）",
    "Threshold on your population": "基于本机构客群的阈值",
    "Not available right now; try again later.": "暂时无法计算，请稍后再试。",
    "Not enough enrolled faces yet": "已注册的人脸还不够多",
    "Every pair of your enrolled customers is a pair of different people.": (
        "已注册客户中任意两人都是不同的人。"
    ),
    "Face network": "人脸识别网络",
    "Enrolled subjects": "已注册用户",
    "Impostor pairs used": "使用的非同一人比对对数",
    "random sample": "随机抽样",
    "Probable duplicates excluded": "已排除的疑似重复人脸",
    "Current threshold": "当前阈值",
    "False match rate at the current threshold": "当前阈值下的误识率",
    "Threshold for a false match rate of": "误识率目标对应的阈值：",
    "insufficient": "样本不足",
    "needs at least": "至少需要",
    "Lock-outs (limit.*)": "锁定（limit.*）",
    "The numbers as a table": "以表格查看数据",
    "Console users": "控制台账号",
    "Role": "角色",
    "Last sign-in": "最近登录",
    "Locked until": "锁定至",
    "Actions": "操作",
    "Add a user": "新增账号",
    "Create with a generated password": "创建（自动生成密码）",
    "Back to the console": "返回控制台",
    "Case": "案件",
    "liveness": "活体",
    "s after opening": "秒（自会话开启）",
    # issue 6: non-face cases (SMS code, bank card, authority) in the same queue
    "Non-face cases (SMS code, bank card, authority)": (
        "非人脸核验案件（短信验证码、银行卡、权威库）"
    ),
    "Non-face case": "非人脸核验案件",
    "Opened": "开启时间",
    "Cause": "起因",
    "Steps": "步骤",
    "Failed attempts at the current step": "当前步骤失败次数",
    "Phone": "手机号",
    "codes sent": "条验证码已发送",
}


def translator(lang: str) -> Callable[[str], str]:
    """``t(text)``: the zh-CN text for ``lang == "zh-CN"`` (English when missing)."""
    if lang != "zh-CN":
        return lambda text: text
    return lambda text: ZH.get(text, text)


__all__ = ["LANGS", "LANG_COOKIE", "ZH", "translator"]
