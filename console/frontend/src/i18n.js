// Messages of the console: Chinese first, English beside it. Attacker-written text never goes through here.
import { computed, ref } from 'vue'
import zhCn from 'element-plus/es/locale/lang/zh-cn'
import en from 'element-plus/es/locale/lang/en'

const messages = {
  'zh-CN': {
    app: 'govctl 安全运营控制台', overview: '总览', incidents: '安全事件', events: '事件检索', bans: '封禁',
    signIn: '登录', signOut: '退出', user: '用户名', password: '密码', language: 'English', zone: '时区',
    required: '{field}不能为空', tooLong: '{field}不能超过 {n} 个字符',
    badCredentials: '用户名或密码错误', locked: '失败次数过多，该账户在此地址已被锁定，请稍后再试',
    disabled: '该账户已停用，请联系管理员', sessionEnded: '会话已结束，请重新登录',
    forbidden: '当前角色无权执行此操作', conflict: '当前状态不允许此操作', notFound: '对象不存在',
    invalid: '输入无效', unavailable: '服务暂不可用', failed: '请求失败', network: '无法连接服务器',
    role: { ops: '运维', security: '安全', auditor: '审计' },
    severity: { informational: '信息', low: '低', medium: '中', high: '高', critical: '严重' },
    state: { new: '新建', acknowledged: '已确认', contained: '已遏制', resolved: '已解决', 'false-positive': '误报' },
    openIncidents: '未关闭事件', blockedToday: '今日拦截', blocked7d: '近 7 日拦截', activeBans: '生效中的封禁',
    blocksPerRule: '近 7 日每日拦截（按规则）', bySeverity: '未关闭事件（按严重程度）', byState: '事件（按状态）',
    status: '状态', id: '编号', title: '标题', entity: '实体', alerts: '告警', assignee: '负责人', last: '最近活动', first: '首次',
    all: '全部', source: '来源', timeRange: '时间范围', start: '开始', end: '结束', search: '搜索', reset: '重置',
    total: '共 {n} 条', filterText: '标题包含', live: '实时', liveNew: '有新的告警或事件',
    ack: '确认', assign: '指派', contain: '遏制', resolve: '解决', falsePositive: '误报',
    note: '备注', addNote: '添加备注', assignTo: '指派给', resolveNote: '处理说明（可选）',
    timeline: '告警时间线', evidence: '证据日志', decisions: '拦截决策', history: '处理记录',
    rule: '规则', level: '级别', count: '次数', address: '地址', action: '动作', until: '截止', reason: '原因',
    actor: '操作人', time: '时间', kind: '类型', text: '内容', back: '返回列表', done: '已完成',
    query: '查询', queryHelp: '语法同 govctl incidents events：字段:值 …，地址字段可用 CIDR',
    since: '起', until2: '止', limit: '条数', dataset: '数据集', original: '原始日志', noData: '无数据',
    remaining: '剩余', addBan: '新增封禁', lift: '解除', liftReason: '解除原因', ttl: '时长',
    trail: '决策记录', minutes: '{n} 分钟', hours: '{n} 小时', days: '{n} 天', badAddress: '请输入 IP 地址',
    banAdded: '已封禁 {a}', banLifted: '已解除 {a}', confirm: '确定', cancel: '取消',
    enforced: '已执行', dryRun: '演练（未下发）',
    // notify (issue #18): the bell
    notifications: '通知', unreadCount: '{n} 条未读', markAllRead: '全部标为已读', noNotifications: '暂无通知',
    // cases (issue #18): SLAs, merge/split/reopen, observables, response plans, the report
    sla: '处置时限 SLA', slaTarget: { acknowledge: '确认', contain: '遏制', resolve: '解决' },
    slaStatus: { met: '达标', breached: '超时', pending: '进行中' }, due: '截止', reached: '达成',
    observables: '关联指标', obsKind: { ip: '地址', user: '用户', host: '主机', url: 'URL', hash: '文件哈希' },
    seenElsewhere: '在其他 {n} 个事件中出现', notSeenElsewhere: '仅见于本事件',
    checklist: '应急预案检查单', noPlan: '无适用预案', tickedBy: '{who} 于 {at} 完成',
    merge: '合并', mergeIds: '并入的事件编号（逗号分隔）', split: '拆分所选告警', reopen: '重新打开',
    report: '下载事件报告 (PDF)', reportJson: 'JSON', mergedInto: '已并入 #{id}', badIds: '请输入事件编号，如 12, 15',
    selectAlerts: '请先在时间线中勾选要拆分的告警', splitDone: '已拆分为新事件 #{id}',
    // incidents list and overview per center (issue #17)
    center: '中心', sourceOrRange: '来源地址或网段', blocksPerCenter: '各中心拦截（今日 / 近 7 日）',
    noBlocksInCenters: '近 7 日无中心防火墙执行的拦截', today: '今日', last7days: '近 7 日',
    topBlockedSources: '拦截最多的来源（近 7 日）',
    // range bans (h-ranges)
    addressOrRange: '地址或网段', kindRange: '网段', badRange: '网段前缀长度须为 IPv4 /1–32 或 IPv6 /1–128，例如 203.0.113.0/24',
    // the blocklist exchange on the bans page (issue #18)
    exchange: '城市间封禁列表交换', exportList: '导出已签名的封禁列表', importList: '导入', blocklistFile: '封禁列表文件',
    issuerKey: '签发方 SM2 公钥', badPubkey: '请输入 SM2 公钥（04 开头的 130 位十六进制）', notJson: '文件不是 JSON', tooLarge: '文件过大（上限 32 MiB）',
    imported: '已导入 {issuer} 的 {n} 条封禁', skipped: '未导入',
    // audit trail (issue #19)
    auditLog: '审计日志', auditTarget: '对象', auditOutcome: '结果', auditParams: '参数', outcomeOk: '成功', outcomeFailed: '失败',
    proof: '下载证明', proofNotYet: '该条目尚未被已签名的检查点覆盖，请先执行 govctl auditlog checkpoint',
    auditHidden: '审计日志需要“安全”或“审计”角色',
    // host hardening (issue #19)
    hardening: '主机加固', hardenMatrix: '核查矩阵 Matrix', hardenDiffs: '加固差异 Diffs', hardenLevel: '等级',
    hardenLimit: '主机范围', hardenRunAudit: '运行核查', hardenRunCheck: '预览加固差异', hardenBadLimit: '主机范围只能是主机名、组名、通配符和 , : ! & ，例如 center_prod',
    hardenJob_running: '运行中', hardenJob_done: '已完成', hardenJob_failed: '失败', hardenUnreachable: '不可达主机',
    hardenWaiting: '等待主机开始…', hardenHostCol: '主机', hardenStatus: '状态', hardenTasks: '任务数', hardenChanged: '变更',
    hardenCurrent: '当前任务', hardenVerdicts: '结论统计', hardenVerdict: '结论', hardenFailingOnly: '只看不符合项',
    hardenLatest: '最近一次核查', hardenLatestCheck: '最近一次差异预览', hardenHosts: '台主机',
    hardenHost_ok: '正常', hardenHost_unreachable: '不可达', hardenHost_failed: '失败', hardenHost_refused: '已拒绝',
    hardenWouldChange: '将变更 {n} 处', hardenControl: '等保控制点', hardenItem: '检查项', hardenExpected: '期望值',
    hardenFound: '实际值', hardenNote: '说明', hardenWaiver: '豁免', hardenWaiverActive: '豁免生效', hardenWaiverExpired: '豁免已过期',
    hardenNoAudit: '尚无主机核查记录：请运行核查（或 govctl audit）', hardenNoCheck: '尚无加固差异预览：请点击“预览加固差异”（或 govctl harden --check）',
  },
  en: {
    app: 'govctl security console', overview: 'Overview', incidents: 'Incidents', events: 'Events', bans: 'Bans',
    signIn: 'Sign in', signOut: 'Sign out', user: 'User name', password: 'Password', language: '中文', zone: 'Time zone',
    required: '{field} is required', tooLong: '{field} must be at most {n} characters',
    badCredentials: 'Wrong user name or password', locked: 'Too many failed sign-ins for this user from this address; try again later',
    disabled: 'This user is disabled; ask an administrator', sessionEnded: 'The session ended; please sign in again',
    forbidden: 'Your role may not do this', conflict: 'The current state does not allow this', notFound: 'Not found',
    invalid: 'Invalid input', unavailable: 'Service unavailable', failed: 'Request failed', network: 'Cannot reach the server',
    role: { ops: 'ops', security: 'security', auditor: 'auditor' },
    severity: { informational: 'informational', low: 'low', medium: 'medium', high: 'high', critical: 'critical' },
    state: { new: 'new', acknowledged: 'acknowledged', contained: 'contained', resolved: 'resolved', 'false-positive': 'false positive' },
    openIncidents: 'Open incidents', blockedToday: 'Blocked today', blocked7d: 'Blocked in 7 days', activeBans: 'Active bans',
    blocksPerRule: 'Blocks per day, last 7 days (by rule)', bySeverity: 'Open incidents by severity', byState: 'Incidents by state',
    status: 'State', id: 'ID', title: 'Title', entity: 'Entity', alerts: 'Alerts', assignee: 'Assignee', last: 'Last activity', first: 'First',
    all: 'All', source: 'Source', timeRange: 'Time range', start: 'Start', end: 'End', search: 'Search', reset: 'Reset',
    total: '{n} in all', filterText: 'Title contains', live: 'Live', liveNew: 'New alerts or incidents',
    ack: 'Acknowledge', assign: 'Assign', contain: 'Contain', resolve: 'Resolve', falsePositive: 'False positive',
    note: 'Note', addNote: 'Add note', assignTo: 'Assign to', resolveNote: 'Resolution note (optional)',
    timeline: 'Alert timeline', evidence: 'Evidence lines', decisions: 'Blocking decisions', history: 'History',
    rule: 'Rule', level: 'Level', count: 'Count', address: 'Address', action: 'Action', until: 'Until', reason: 'Reason',
    actor: 'Actor', time: 'Time', kind: 'Kind', text: 'Text', back: 'Back to list', done: 'Done',
    query: 'Query', queryHelp: 'Same syntax as govctl incidents events: field:value …; address fields take a CIDR',
    since: 'Since', until2: 'Until', limit: 'Limit', dataset: 'Dataset', original: 'Original line', noData: 'No data',
    remaining: 'Remaining', addBan: 'Add ban', lift: 'Lift', liftReason: 'Reason for lifting', ttl: 'Duration',
    trail: 'Decision trail', minutes: '{n} minutes', hours: '{n} hours', days: '{n} days', badAddress: 'Enter an IP address',
    banAdded: 'Blocked {a}', banLifted: 'Lifted {a}', confirm: 'OK', cancel: 'Cancel',
    enforced: 'enforced', dryRun: 'dry run (not enforced)',
    // notify (issue #18): the bell
    notifications: 'Notifications', unreadCount: '{n} unread', markAllRead: 'Mark all read', noNotifications: 'No notifications',
    // cases (issue #18): SLAs, merge/split/reopen, observables, response plans, the report
    sla: 'SLA', slaTarget: { acknowledge: 'Acknowledge', contain: 'Contain', resolve: 'Resolve' },
    slaStatus: { met: 'met', breached: 'breached', pending: 'pending' }, due: 'Due', reached: 'Reached',
    observables: 'Observables', obsKind: { ip: 'address', user: 'user', host: 'host', url: 'URL', hash: 'file hash' },
    seenElsewhere: 'seen in {n} other incidents', notSeenElsewhere: 'only in this incident',
    checklist: 'Response plan checklist', noPlan: 'No response plan fits', tickedBy: 'done by {who} at {at}',
    merge: 'Merge', mergeIds: 'Incidents to merge in (comma-separated)', split: 'Split selected alerts', reopen: 'Reopen',
    report: 'Download report (PDF)', reportJson: 'JSON', mergedInto: 'merged into #{id}', badIds: 'Enter incident numbers, e.g. 12, 15',
    selectAlerts: 'Tick the alerts to split off in the timeline first', splitDone: 'Split into new incident #{id}',
    // incidents list and overview per center (issue #17)
    center: 'Center', sourceOrRange: 'Source address or range', blocksPerCenter: 'Blocks per center (today / 7 days)',
    noBlocksInCenters: 'No block enforced by a center firewall in 7 days', today: 'Today', last7days: '7 days',
    topBlockedSources: 'Most blocked sources (7 days)',
    // range bans (h-ranges)
    addressOrRange: 'Address or range', kindRange: 'range', badRange: 'A range needs a prefix length of /1–32 (IPv4) or /1–128 (IPv6), e.g. 203.0.113.0/24',
    // the blocklist exchange on the bans page (issue #18)
    exchange: 'Blocklist exchange between cities', exportList: 'Export the signed blocklist', importList: 'Import', blocklistFile: 'Blocklist file',
    issuerKey: "Issuer's SM2 public key", badPubkey: 'Enter an SM2 public key (130 hex digits starting with 04)', notJson: 'The file is not JSON', tooLarge: 'The file is too large (32 MiB at most)',
    imported: 'Imported {n} blocks from {issuer}', skipped: 'Not imported',
    // audit trail (issue #19)
    auditLog: 'Audit log', auditTarget: 'Target', auditOutcome: 'Outcome', auditParams: 'Parameters', outcomeOk: 'ok', outcomeFailed: 'failed',
    proof: 'Proof', proofNotYet: 'No signed checkpoint covers this entry yet; run govctl auditlog checkpoint',
    auditHidden: 'The audit log needs the security or auditor role',
    // host hardening (issue #19)
    hardening: 'Hardening', hardenMatrix: 'Matrix', hardenDiffs: 'Harden diffs', hardenLevel: 'Level',
    hardenLimit: 'Hosts', hardenRunAudit: 'Run audit', hardenRunCheck: 'Preview harden diffs', hardenBadLimit: 'Hosts: host names, groups, wildcards and , : ! & only, e.g. center_prod',
    hardenJob_running: 'running', hardenJob_done: 'done', hardenJob_failed: 'failed', hardenUnreachable: 'Unreachable hosts',
    hardenWaiting: 'Waiting for the hosts to start…', hardenHostCol: 'Host', hardenStatus: 'Status', hardenTasks: 'Tasks', hardenChanged: 'Changed',
    hardenCurrent: 'Current task', hardenVerdicts: 'Verdicts', hardenVerdict: 'Verdict', hardenFailingOnly: 'Failing items only',
    hardenLatest: 'Latest audit', hardenLatestCheck: 'Latest diff preview', hardenHosts: 'hosts',
    hardenHost_ok: 'ok', hardenHost_unreachable: 'unreachable', hardenHost_failed: 'failed', hardenHost_refused: 'refused',
    hardenWouldChange: '{n} changes', hardenControl: 'MLPS control', hardenItem: 'Item', hardenExpected: 'Expected',
    hardenFound: 'Found', hardenNote: 'Note', hardenWaiver: 'Waiver', hardenWaiverActive: 'Waiver in force', hardenWaiverExpired: 'Waiver expired',
    hardenNoAudit: 'No host audit on record yet: run one (or govctl audit)', hardenNoCheck: 'No harden diff preview yet: click "Preview harden diffs" (or govctl harden --check)',
  },
}

export const lang = ref(localStorage.getItem('govctl.lang') === 'en' ? 'en' : 'zh-CN')
export const elementLocale = computed(() => (lang.value === 'en' ? en : zhCn))

export function toggleLang() {
  lang.value = lang.value === 'en' ? 'zh-CN' : 'en'
  localStorage.setItem('govctl.lang', lang.value)
  document.documentElement.lang = lang.value
}

export function t(key, params = {}) {
  const value = key.split('.').reduce((node, part) => (node == null ? undefined : node[part]), messages[lang.value])
  if (typeof value !== 'string') return key
  return value.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ''))
}
