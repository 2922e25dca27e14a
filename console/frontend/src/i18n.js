// Messages of the console: Chinese first, English beside it. Attacker-written text never goes through here.
import { computed, ref } from 'vue'
import zhCn from 'element-plus/es/locale/lang/zh-cn'
import en from 'element-plus/es/locale/lang/en'

const messages = {
  'zh-CN': {
    app: 'govctl 政务云平台控制台', overview: '总览', incidents: '安全事件', events: '事件检索', bans: '封禁',
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
    // compliance compare, remediation and waivers (issue #19, h-compare)
    navCompare: '合规对比', navRemediation: '整改跟踪', navSecOps: '安全运营', navAudit: '合规审计', navOps: '运维',
    cmpEarlier: '较早 A', cmpLater: '较新 B', cmpPick: '选择报告', cmpRun: '对比', cmpPack: '已签名证据包',
    cmpPickTwo: '请选择两份报告', cmpSame: '请选择两份不同的报告', cmpNoRecords: '尚无存档报告（state/compliance/reports/）',
    cmpOnlyA: '仅在 A：', cmpOnlyB: '仅在 B：', cmpScore: '估算分', cmpBand: '档次', cmpHighRisk: '高风险项',
    cmpBefore: '之前', cmpAfter: '之后', cmpChanges: '结论变化', cmpNewHigh: '新增高风险项', cmpResolved: '已消除高风险项',
    cmpEvidence: '证据变化', cmpItem: '条目', cmpControl: '控制点', cmpVerdictChange: '结论', cmpVerdictCol: '结论',
    cmpDirection: '方向', cmpHigh: '高风险', cmpCondition: '判定情形', cmpCheck: '检查', cmpNone: '无',
    cmpDir: { worse: '变差', better: '改善', changed: '变化' },
    cmpVerdict: { 符合: '符合', 部分符合: '部分符合', 不符合: '不符合', 不适用: '不适用', 需人工核查: '需人工核查' },
    remTitle: '整改跟踪', remAsOf: '截至', remOnlyOverdue: '仅超期', remNone: '尚无整改跟踪', remOwner: '负责人', remDue: '期限',
    remStatusCol: '状态', remLink: '整改链接', remOverdue: '超期', remEdit: '编辑', remSave: '保存', remCancel: '取消',
    remTrack: '跟踪', remUntracked: '未跟踪的不符合 / 部分符合项', remNoneUntracked: '没有未跟踪的项',
    remOwnerNeeded: '请填写负责人（个人或团队）', remBadDate: '日期格式为 YYYY-MM-DD，例如 2027-03-31', remTooLong: '最多 {n} 个字符',
    remStatus: { open: '待整改', 'in-progress': '整改中', done: '已完成', 'accepted-risk': '接受风险' },
    wvTitle: '主机条目豁免', wvItem: '主机条目', wvHost: '主机', wvEveryHost: '所有主机', wvJustificationCol: '理由',
    wvApproverCol: '批准人', wvExpires: '有效期至', wvActive: '生效', wvExpired: '已过期', wvNone: '没有主机条目豁免',
    wvAdd: '添加豁免', wvPickItem: '选择主机加固条目', wvItemNeeded: '请选择主机加固条目', wvBadHost: '主机名只能包含字母、数字、点、下划线和连字符',
    wvJustification: '理由至少 5 个字符', wvApprover: '请填写批准人', wvPast: '有效期须不早于今天', wvAdded: '已豁免 {item}，至 {expires}',

    // compliance reports (issue #19)
    complyNav: '合规报告', complyRunTitle: '生成新报告', complyStandard: '标准', complyLevel: '等级',
    complyStandards: { djcp: '等保 2.0（GB/T 22239）', 'mlps-crypto': '密评（GB/T 39786）' },
    complyLevelN: '第{n}级', complySource: '证据来源', complySourceSaved: '已保存的证据', complySourceCollect: '立即采集（数分钟）',
    complyRun: '生成报告', complyStarted: '报告已开始生成，完成后可打开', complyReports: '报告记录',
    complyStatus: { running: '生成中', ready: '已就绪', failed: '失败' }, complyRequestedBy: '发起人',
    complyStartedAt: '开始时间', complyScore: '估算分', complyHighRisk: '高风险项', complyOpen: '打开',
    complyNoReports: '尚无报告记录', complyGenerated: '生成时间', complyItems: '条目',
    complyFreshness: '证据时效', complyLayer: '证据层', complyCollected: '采集时间', complyStale: '已过期', complyFresh: '有效',
    complyFilters: '筛选', complyVerdict: '结论', complyOnlyHighRisk: '仅高风险', complyAutomation: '自动化程度',
    complyAutomationOf: { automated: '自动', partial: '部分自动', manual: '人工' },
    complyShown: '显示 {n} / {total} 条', complyEvidence: '证据', complyDeciding: '决定性证据', complyCheck: '检查项',
    complyDetail: '说明', complySource2: '来源', complyRemediation: '整改建议', complyDownloads: '下载',
    complyPack: '签名证据包', complyVerifyTitle: '验证签名证据包', complyVerifyHint: '选择 govctl comply pack 生成或本页下载的证据包（zip）',
    complyVerified: '验证通过：签名有效，{n} 个文件均未改动', complyVerifyFailed: '验证失败',
    complyBadSignature: '清单签名无效', complyChanged: '被改动', complyMissing: '缺失', complyAdded: '多出',
    complyFailedReason: '失败原因', complyClear: '清除', complyState: '状态', complyClause: '条款',

    // ops pages: topology and availability (issue #19, h-ops)
    ops: {
      topology: '拓扑', availability: '可用性', refresh: '刷新', stack: '栈', centers: '中心',
      health: { up: '正常', down: '故障', degraded: '部分故障', unknown: '未知' },
      monitoringUnreadable: '无法读取监控（Prometheus），健康状态显示为“未知”',
      centerRole: { production: '生产中心', same_city_dr: '同城灾备中心', remote_dr: '异地灾备中心' },
      zoneKind: { internet_dmz: '互联网 DMZ', egov_extranet: '电子政务外网区', core_business: '核心业务区', security_management: '安全管理区' },
      dbPrimary: '数据库主库', servesService: '当前承载服务', links: '中心间链路', linkRole: { primary: '主链路', standby: '备用链路' },
      linkNote: '每条链路（含不承载流量的备用链路）由两端中心的监控点经该链路互 ping 对端地址单独测量',
      serviceAndReplication: '服务地址与数据库复制', routedTo: '路由指向', servedNow: '当前应答中心', nobody: '无',
      standby: '复制', mode: '模式', state: '状态', lag: '延迟', drReady: '可切换', yes: '是', no: '否',
      period: { 'now-1d': '近 1 天', 'now-7d': '近 7 天', 'now-30d': '近 30 天' },
      verdictOverall: '总体结论', verdictLabel: '结论',
      verdict: { met: '达标', not_met: '未达标', insufficient_data: '数据不足', unknown: '未知' },
      sli: '服务等级指标（SLI）', noData: '无数据', service: '服务', center: '中心', objective: '目标', achieved: '实际可用性',
      coverage: '覆盖率（已测/应测步数）', downtime: '中断时长', budgetLeft: '30 天预算剩余',
      coverageNote: '覆盖率低于 {min} 时结论为“数据不足”，不判定达标（与 govctl availability report 相同）',
      budgetChart: '30 天错误预算剩余', firingAlerts: '正在触发的燃烧率告警', noAlerts: '无告警', alert: '告警', severity: '级别',
      since: '开始于', outages: '中断记录', noOutages: '无中断', start: '开始', end: '结束', ongoing: '进行中', duration: '时长',
    },

    // drills page (issue #19)
    drills: '灾备演练', drillLive: '当前演练', drillStart: '发起演练', drillAbort: '中止并回滚', drillNoneRunning: '目前没有正在进行的演练',
    drillStartedBy: '发起人', drillRunning: '进行中', drillAbortRequested: '{who} 已请求中止：下一步骤前回滚到拓扑布局',
    drillState: { running: '进行中', finished: '已结束', error: '出错' },
    drillVerdict: { pass: '达标', fail: '未达标', failed: '失败', 'rolled back': '已回滚', aborted: '已中止', unreadable: '无法读取' },
    drillPhase: { preflight: '预检', fault: '故障注入', recover: '恢复', detect: '发现', verify: '验证', failback: '回切', rollback: '回滚' },
    drillScenario: '场景', drillVerdictLabel: '结论', drillRpoColumn: 'RPO（笔 / 秒）', drillDetectionColumn: '发现时间（秒）',
    drillLevelColumn: 'GB/T 20988 等级', drillLevel: '第{n}级', drillNoLevel: '未能评定', drillReports: '报告',
    drillRto: '恢复时间 RTO', drillRpo: '数据丢失 RPO', drillDetection: '发现时间',
    drillWarning: '演练会向云环境注入真实故障（断电、断链），完成或中止时回滚到拓扑布局。',
    drillTypeName: '请再次输入场景名称 {name} 以确认', drillConfirmMismatch: '输入的名称与场景名称 {name} 不一致，未执行任何操作',
    drillStartNow: '开始演练',

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

    // compare uploaded packs (issue #19, h-packcmp)
    cmpModeRecord: '存档记录', cmpModeUpload: '上传证据包', cmpPickFile: '请为 {side} 选择要上传的已签名证据包（.zip）',
    cmpUploadHint: '已签名证据包 zip（合规页下载的证据包，或 govctl comply pack 目录打包）', cmpSources: '对比对象',
    cmpKind: { pack: '已验签证据包', report: '报告' }, cmpSigner: '签名者',
    cmpPackInvalid: '证据包 {side}（{file}）验签失败，未做对比：{problems}',
    cmpBadSignature: '清单签名无效（清单被改动或由其他密钥签名）', cmpPackChanged: '被改动的文件：{files}',
    cmpPackMissing: '缺失的文件：{files}', cmpPackAdded: '多出的文件：{files}',

    // hardening jobs kept across console restarts (issue #19, ops)
    hardenJob_interrupted: '已中断', hardenPastJobs: '历史任务', hardenJobStarted: '开始时间', hardenJobKind: '类型',
    hardenJobBy: '发起人', hardenJobReport: '报告', hardenOpenReport: '查看报告',
  },
  en: {
    app: 'govctl e-government cloud console', overview: 'Overview', incidents: 'Incidents', events: 'Events', bans: 'Bans',
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
    // compliance compare, remediation and waivers (issue #19, h-compare)
    navCompare: 'Compare', navRemediation: 'Remediation', navSecOps: 'Security operations', navAudit: 'Audit & compliance', navOps: 'Operations',
    cmpEarlier: 'Earlier A', cmpLater: 'Later B', cmpPick: 'Pick a report', cmpRun: 'Compare', cmpPack: 'signed pack',
    cmpPickTwo: 'Pick two reports', cmpSame: 'Pick two different reports', cmpNoRecords: 'No reports on record yet (state/compliance/reports/)',
    cmpOnlyA: 'Only in A:', cmpOnlyB: 'Only in B:', cmpScore: 'Estimated score', cmpBand: 'Band', cmpHighRisk: 'High-risk findings',
    cmpBefore: 'Before', cmpAfter: 'After', cmpChanges: 'Verdict changes', cmpNewHigh: 'New high-risk findings', cmpResolved: 'Resolved high-risk findings',
    cmpEvidence: 'Evidence changed', cmpItem: 'Item', cmpControl: 'Control', cmpVerdictChange: 'Verdict', cmpVerdictCol: 'Verdict',
    cmpDirection: 'Direction', cmpHigh: 'high risk', cmpCondition: 'Condition', cmpCheck: 'Check', cmpNone: 'None',
    cmpDir: { worse: 'worse', better: 'better', changed: 'changed' },
    cmpVerdict: { 符合: 'compliant', 部分符合: 'partly compliant', 不符合: 'non-compliant', 不适用: 'not applicable', 需人工核查: 'manual review' },
    remTitle: 'Remediation tracking', remAsOf: 'as of', remOnlyOverdue: 'Overdue only', remNone: 'Nothing tracked yet', remOwner: 'Owner', remDue: 'Due',
    remStatusCol: 'Status', remLink: 'Link to the fix', remOverdue: 'overdue', remEdit: 'Edit', remSave: 'Save', remCancel: 'Cancel',
    remTrack: 'Track', remUntracked: 'Non-compliant / partly compliant items nobody tracks', remNoneUntracked: 'No untracked items',
    remOwnerNeeded: 'Name the owner (a person or team)', remBadDate: 'Write the date as YYYY-MM-DD, e.g. 2027-03-31', remTooLong: 'At most {n} characters',
    remStatus: { open: 'open', 'in-progress': 'in progress', done: 'done', 'accepted-risk': 'accepted risk' },
    wvTitle: 'Host-item waivers', wvItem: 'Host item', wvHost: 'Host', wvEveryHost: 'every host', wvJustificationCol: 'Justification',
    wvApproverCol: 'Approver', wvExpires: 'Expires', wvActive: 'active', wvExpired: 'expired', wvNone: 'No host-item waivers',
    wvAdd: 'Add waiver', wvPickItem: 'Pick a host-hardening item', wvItemNeeded: 'Pick a host-hardening item', wvBadHost: 'A host name has letters, digits, dots, underscores and hyphens only',
    wvJustification: 'At least 5 characters of justification', wvApprover: 'Name the approver', wvPast: 'The expiry may not be before today', wvAdded: 'Waived {item} until {expires}',

    // compliance reports (issue #19)
    complyNav: 'Compliance', complyRunTitle: 'New report', complyStandard: 'Standard', complyLevel: 'Level',
    complyStandards: { djcp: 'MLPS 2.0 (GB/T 22239)', 'mlps-crypto': 'Crypto assessment (GB/T 39786)' },
    complyLevelN: 'Level {n}', complySource: 'Evidence', complySourceSaved: 'Saved evidence', complySourceCollect: 'Collect now (minutes)',
    complyRun: 'Run report', complyStarted: 'The report is being made; open it when it is ready', complyReports: 'Reports on record',
    complyStatus: { running: 'running', ready: 'ready', failed: 'failed' }, complyRequestedBy: 'Requested by',
    complyStartedAt: 'Started', complyScore: 'Estimated score', complyHighRisk: 'High risk', complyOpen: 'Open',
    complyNoReports: 'No reports on record yet', complyGenerated: 'Generated', complyItems: 'Items',
    complyFreshness: 'Evidence freshness', complyLayer: 'Layer', complyCollected: 'Collected', complyStale: 'stale', complyFresh: 'fresh',
    complyFilters: 'Filters', complyVerdict: 'Verdict', complyOnlyHighRisk: 'High risk only', complyAutomation: 'Automation',
    complyAutomationOf: { automated: 'automated', partial: 'partly automated', manual: 'manual' },
    complyShown: '{n} of {total} items', complyEvidence: 'Evidence', complyDeciding: 'deciding', complyCheck: 'Check',
    complyDetail: 'Detail', complySource2: 'Source', complyRemediation: 'Remediation', complyDownloads: 'Downloads',
    complyPack: 'Signed pack', complyVerifyTitle: 'Verify a signed evidence pack', complyVerifyHint: 'Choose a pack (zip) from govctl comply pack or downloaded here',
    complyVerified: 'Verified: signature valid, all {n} files unchanged', complyVerifyFailed: 'Verification failed',
    complyBadSignature: 'the manifest signature does not verify', complyChanged: 'changed', complyMissing: 'missing', complyAdded: 'added',
    complyFailedReason: 'Reason', complyClear: 'Clear', complyState: 'Status', complyClause: 'Clause',

     // ops pages: topology and availability (issue #19, h-ops)
    ops: {
      topology: 'Topology', availability: 'Availability', refresh: 'Refresh', stack: 'Stack', centers: 'Centers',
      health: { up: 'up', down: 'down', degraded: 'degraded', unknown: 'unknown' },
      monitoringUnreadable: 'Monitoring (Prometheus) cannot be read: health shows as unknown',
      centerRole: { production: 'production', same_city_dr: 'same-city DR', remote_dr: 'remote DR' },
      zoneKind: { internet_dmz: 'internet DMZ', egov_extranet: 'e-gov extranet', core_business: 'core business', security_management: 'security management' },
      dbPrimary: 'DB primary', servesService: 'serves the service', links: 'Links between centers', linkRole: { primary: 'primary', standby: 'standby' },
      linkNote: "Each link, a standby that carries no traffic too, is measured on its own: each end's monitor host pings the far end's address across it",
      serviceAndReplication: 'Service address and replication', routedTo: 'Routed to', servedNow: 'Answering now', nobody: 'none',
      standby: 'Replication', mode: 'Mode', state: 'State', lag: 'Lag', drReady: 'DR ready', yes: 'yes', no: 'no',
      period: { 'now-1d': 'last day', 'now-7d': 'last 7 days', 'now-30d': 'last 30 days' },
      verdictOverall: 'Overall', verdictLabel: 'Verdict',
      verdict: { met: 'met', not_met: 'not met', insufficient_data: 'insufficient data', unknown: 'unknown' },
      sli: 'Service level indicator (SLI)', noData: 'No data', service: 'Service', center: 'Center', objective: 'Objective', achieved: 'Achieved',
      coverage: 'Coverage (measured / expected steps)', downtime: 'Downtime', budgetLeft: '30-day budget left',
      coverageNote: 'Below {min} coverage the verdict is insufficient data, never met (as govctl availability report)',
      budgetChart: '30-day error budget left', firingAlerts: 'Burn-rate alerts firing', noAlerts: 'No alerts', alert: 'Alert', severity: 'Severity',
      since: 'Since', outages: 'Outages', noOutages: 'No outages', start: 'Start', end: 'End', ongoing: 'ongoing', duration: 'Duration',
    },

    // drills page (issue #19)
    drills: 'DR drills', drillLive: 'Current drill', drillStart: 'Start a drill', drillAbort: 'Abort and roll back', drillNoneRunning: 'No drill is running',
    drillStartedBy: 'started by', drillRunning: 'running', drillAbortRequested: '{who} asked to abort: rolling back to the topology\'s layout before the next step',
    drillState: { running: 'running', finished: 'finished', error: 'error' },
    drillVerdict: { pass: 'met', fail: 'not met', failed: 'failed', 'rolled back': 'rolled back', aborted: 'aborted', unreadable: 'unreadable' },
    drillPhase: { preflight: 'preflight', fault: 'fault', recover: 'recover', detect: 'detect', verify: 'verify', failback: 'failback', rollback: 'rollback' },
    drillScenario: 'Scenario', drillVerdictLabel: 'Verdict', drillRpoColumn: 'RPO (tx / s)', drillDetectionColumn: 'Detection (s)',
    drillLevelColumn: 'GB/T 20988 level', drillLevel: 'level {n}', drillNoLevel: 'not demonstrated', drillReports: 'Reports',
    drillRto: 'Recovery time RTO', drillRpo: 'Data loss RPO', drillDetection: 'Detection time',
    drillWarning: 'A drill injects real faults (power, links) into the cloud and rolls back to the topology\'s layout when it ends or is aborted.',
    drillTypeName: 'Type the scenario\'s name {name} again to confirm', drillConfirmMismatch: 'The name typed is not {name}; nothing was done',
    drillStartNow: 'Start the drill',

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

    // compare uploaded packs (issue #19, h-packcmp)
    cmpModeRecord: 'On record', cmpModeUpload: 'Upload a pack', cmpPickFile: 'Choose the signed pack (.zip) to upload as {side}',
    cmpUploadHint: 'A signed pack as a zip (as the Compliance page downloads it, or a zipped govctl comply pack directory)', cmpSources: 'Compared',
    cmpKind: { pack: 'verified pack', report: 'report' }, cmpSigner: 'signer',
    cmpPackInvalid: 'Pack {side} ({file}) fails verification; nothing compared: {problems}',
    cmpBadSignature: 'the manifest signature does not verify (manifest altered or signed by another key)', cmpPackChanged: 'changed: {files}',
    cmpPackMissing: 'missing: {files}', cmpPackAdded: 'added: {files}',

    // hardening jobs kept across console restarts (issue #19, ops)
    hardenJob_interrupted: 'interrupted', hardenPastJobs: 'Past jobs', hardenJobStarted: 'Started', hardenJobKind: 'Kind',
    hardenJobBy: 'Started by', hardenJobReport: 'Report', hardenOpenReport: 'Open report',
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
