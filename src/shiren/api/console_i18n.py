"""The console's zh-CN texts: English is the source (and the fallback); ``t(text)`` looks a text
up when the signed-in user chose 中文, ``tf(text, **values)`` also fills its ``{placeholders}``
(escaped, unless a value is already markup such as :func:`strong`).  Tests check that every
``t("…")`` / ``tf("…")`` in the templates has a translation here, and that no page in 中文
shows English beyond enum values and codes (tests/api/test_console_i18n.py)."""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup

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
    # issue 17: every text of the console, and the keyframes kept for reviewers
    "console": "控制台",
    "Console sections": "控制台栏目",
    "Open": "打开",
    "oldest first": "最早的在前",
    "{n} case": "{n} 个案件",
    "{n} cases": "{n} 个案件",
    "No {status} cases.": "没有状态为 {status} 的案件。",
    "No {status} cases for “{ref}”.": "用户编号“{ref}”没有状态为 {status} 的案件。",
    "(approving will not bind this face)": "（通过也不会绑定此人脸）",
    "none recorded": "无记录",
    "none": "无",
    "{ms} ms (lead-in {lead} ms)": "{ms} 毫秒（准备时间 {lead} 毫秒）",
    "Kept keyframes": "保留的关键帧",
    "Kept for this review until {until}, deleted when it is decided. Each view is written to "
    "the audit log.": "为本次复核保留至 {until}，作出决定后即删除。每次查看都会写入审计日志。",
    "Keyframe {n} of {total} of the capture": "采集的第 {n} 帧关键帧（共 {total} 帧）",
    "{n} kept; only reviewers may look at them.": "已保留 {n} 帧；只有复核员可以查看。",
    "None kept for this case (the capture was not kept, or its keyframes expired).": (
        "本案件没有保留的关键帧（采集未保留，或关键帧已过期）。"
    ),
    "Closed {when} by {who}: {outcome}.": "{when} 由 {who} 结案：{outcome}。",
    "Same person: the faces match on inspection": "同一人：经查看，人脸一致",
    "Live capture confirmed (prompts followed)": "确认为实时采集（已按提示完成动作）",
    "Checked against documents or the customer": "已与证件或客户本人核实",
    "Different person": "不是同一人",
    "Photo, screen, mask or replay suspected": "疑似照片、屏幕、面具或回放攻击",
    "Capture too poor to judge: ask for a new one": "采集质量太差无法判断：请重新采集",
    "Other (explain in the note)": "其他（请在说明中解释）",
    "choose a reason": "请选择理由",
    "write a reason of at least 3 characters": "请填写至少 3 个字的说明",
    "no kept keyframes to inspect: choose another reason": (
        "没有可供查看的保留关键帧：请选择其他理由"
    ),
    "outcome must be approve or reject": "结论必须是通过或拒绝",
    "Chain intact: {n} events, hashes, links and MACs verified.": (
        "哈希链完整：已校验 {n} 条事件的哈希、链接和 MAC。"
    ),
    "Chain BROKEN at seq {seq}:": "哈希链在序号 {seq} 处断裂：",
    "{n} events, newest first · page {page} of {pages}": (
        "共 {n} 条事件，最新的在前 · 第 {page} / {pages} 页"
    ),
    "Audit pages": "审计日志分页",
    "last {n} days": "最近 {n} 天",
    "{level} CI": "{level} 置信区间",
    "Day (UTC)": "日期（UTC）",
    "total": "合计",
    "pass rate": "通过率",
    "Checks per day by decision": "每日核验量（按结论）",
    "Days: {n}, stacked by decision": "天数：{n}，按结论堆叠",
    "Pass rate per day": "每日通过率",
    "share of checks decided pass": "结论为通过的核验占比",
    "Most frequent failure reasons": "最常见的失败原因",
    "reason codes of the period's checks, most frequent first": (
        "本期核验的原因代码，按次数从多到少"
    ),
    "Attack signals per day": "每日攻击信号",
    "liveness.* reasons": "liveness.* 原因",
    "Lock-outs per day": "每日锁定",
    "limit.* reasons": "limit.* 原因",
    "attack": "攻击",
    "lockout": "锁定",
    "none in this period": "本期无",
    "Code": "代码",
    "Not allowed": "无权访问",
    "Form expired": "表单已过期",
    "Not found": "未找到",
    "Already decided": "已作出决定",
    "Not available": "暂不可用",
    "Error": "错误",
    "Sign-in failed.": "登录失败。",
    "← Search": "← 返回搜索",
    "no": "否",
    "not shown here (name and ID number stay encrypted; use the lender's data-subject export)": (
        "此处不显示（姓名和身份证号加密保存；请使用机构的个人信息导出功能）"
    ),
    "Text version": "文本版本",
    "Text SHA-256": "文本 SHA-256",
    "Retention": "保存期限",
    "Granted": "同意时间",
    "Withdrawn": "撤回时间",
    "{n} day": "{n} 天",
    "{n} days": "{n} 天",
    "No consent records.": "没有同意记录。",
    "No consent records (removed with the subject's data).": "没有同意记录（已随用户数据删除）。",
    "No audit events for this subject.": "该用户没有审计事件。",
    "{n} match": "{n} 条结果",
    "{n} matches": "{n} 条结果",
    "Reference": "用户编号",
    "No subject reference starts with “{ref}”.": "没有以“{ref}”开头的用户编号。",
    "User {name} ({role}) created. Password, shown this once — hand it over securely:": (
        "已创建账号 {name}（{role}）。密码仅显示这一次，请安全地交给本人："
    ),
    "New password for {name}, shown this once (their sessions have ended):": (
        "{name} 的新密码，仅显示这一次（其现有会话已结束）："
    ),
    "Disable": "停用",
    "Enable": "启用",
    "Reset password": "重置密码",
    "Role of {name}": "{name} 的角色",
    "Change role": "更改角色",
    "you": "本人",
    "That username is taken.": "该用户名已被占用。",
    "{user}: {action} done.": "{user}：{action}已完成。",
    "disable": "停用",
    "enable": "启用",
    "reset": "重置密码",
    "role": "更改角色",
    "you cannot change your own account here": "不能在此处更改自己的账号",
    "unknown role": "未知角色",
    "unknown action": "未知操作",
    "username must be 2-64 of a-z 0-9 . _ - (starting with a letter or digit)": (
        "用户名须为 2–64 个 a-z 0-9 . _ - 字符（以字母或数字开头）"
    ),
    # issue 17: the injection check's evidence on the case page (reviewers only)
    "Injection check": "注入攻击检测",
    "Only reviewers may look at the injection check of a case.": (
        "只有复核员可以查看案件的注入攻击检测结果。"
    ),
    "Not measured for this check (the mode was off, the capture was a recording, or the check "
    "is older than the injection check).": (
        "本次核验未做此检测（检测模式为关闭、采集为录制视频，或核验早于该检测上线）。"
    ),
    "Whether these frames were filmed just now by the capture page: numbers and codes only. "
    "Each view is written to the audit log.": (
        "判断这些画面是否由采集页面当场拍摄：只显示数值和代码。每次查看都会写入审计日志。"
    ),
    "Mode · effect": "模式 · 作用",
    "Finding": "检测结论",
    "decisive evidence": "确定性证据",
    "weak evidence only": "仅有弱证据",
    "Uploaded by · start bounded by": "上传方 · 拍摄起点依据",
    "Camera label names a virtual camera": "摄像头名称指向虚拟摄像头",
    "yes": "是",
    "Frames": "帧数",
    "Features against their lines": "各项特征与其判定线",
    "Feature": "特征",
    "Value": "数值",
    "Line": "判定线",
    "Fired": "触发",
    "Line kind": "判定线类型",
    "not judged": "未判定",
    "decides": "可定案",
    "review only": "仅转人工",
}


def translator(lang: str) -> Callable[[str], str]:
    """``t(text)``: the zh-CN text for ``lang == "zh-CN"`` (English when missing)."""
    if lang != "zh-CN":
        return lambda text: text
    return lambda text: ZH.get(text, text)


def formatter(lang: str) -> Callable[..., Markup]:
    """``tf(text, **values)``: ``t(text)`` with its ``{placeholders}`` filled, every value
    escaped unless it is already markup (:func:`strong`)."""
    t = translator(lang)

    def tf(text: str, /, **values: object) -> Markup:
        return Markup.escape(t(text)).format(**values)

    return tf


def strong(value: object) -> Markup:
    """``value`` (escaped) in ``<strong>``, for a placeholder of :func:`formatter`."""
    return Markup("<strong>{}</strong>").format(value)


__all__ = ["LANGS", "LANG_COOKIE", "ZH", "formatter", "strong", "translator"]
