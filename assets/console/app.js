// renkei web console: signs in with POST /v1/session and calls the JSON API with the bearer
// token kept in sessionStorage (gone when the tab closes). It holds no data of its own: the
// API decides what each role sees and records what is viewed. The one thing it checks itself
// is a saved checkpoint against today's (both signatures and the consistency proof, with
// WebCrypto), since there the gateway must not be the one saying "ok".
// No cookie is used, so state-changing calls (always fetch with an Authorization header)
// cannot be forged by another site. No inline script, no outside resource (see the CSP).
"use strict";

const TOKEN = "renkei.console.token";
const USER = "renkei.console.user";
const LANG = "renkei.console.lang";

const TEXT = {
  ja: {
    skip: "本文へ移動", title: "renkei 連携コンソール", signout: "サインアウト",
    nav_audit: "記録の検索", nav_verify: "検証", nav_keys: "鍵の管理", nav_ops: "運用状況",
    signin: "サインイン", user: "利用者名", password: "パスワード", totp: "確認コード（6桁）",
    home: "ようこそ", home_text: "上のメニューから作業を選んでください。",
    who_person: "対象者", person: "団体内統合宛名番号", business_system: "業務システム",
    business_number: "業務の宛名番号（業務システムと共に）", period: "期間", from: "開始日",
    to: "終了日（含まない）", conditions: "条件", kind: "種別", any: "すべて",
    kind_inquiry: "情報照会", kind_provision: "情報提供", kind_code_acquisition: "符号取得",
    kind_denied_request: "拒否された要求", kind_staff_action: "職員の操作",
    kind_key_action: "鍵の操作", kind_retention_sweep: "保存期間の整理",
    procedure: "事務手続コード", item: "特定個人情報名コード", result: "結果",
    result_answered: "提供あり", result_not_held: "該当なし", result_refused: "拒否",
    result_failed: "失敗", result_accepted: "受付", result_done: "完了",
    page_size: "1ページの件数", search: "検索", csv: "CSVをダウンロード",
    export_person: "この対象者の記録を書き出す", newer: "新しい記録へ", older: "古い記録へ",
    record: "記録の詳細", back: "検索結果に戻る", verify_live: "いま検証する",
    consistency: "保存したチェックポイントとの整合性", check: "確認",
    reencryption: "再暗号化の進み具合", requests: "承認待ちの依頼",
    readiness: "稼動準備の確認", queue: "照会の状態別件数", totals: "保持している件数",
    batches: "一括ファイル", business_stats: "業務統計", month: "月", show: "表示",
    open: "開く", seq: "通番", requested_at: "要求日時", provided_at: "提供日時",
    inquirer: "情報照会者（機関コード）", provider: "情報提供者（機関コード）",
    serial: "処理通番", reason: "理由", non_disclosure: "不開示", staff_actor: "操作した職員",
    staff_action: "操作", staff_terminal: "端末", staff_target: "操作の対象",
    staff_fingerprint: "証明書の指紋", reference: "内部参照", yes: "はい", no: "いいえ",
    none_found: "該当する記録はありません。", records_shown: "件を表示",
    csv_done: "CSVを作成しました（{n}行）。", export_done: "{n}件の記録を書き出しました。",
    export_need_person: "書き出す対象者（団体内統合宛名番号）を入力してください。",
    download_bundle: "書き出したファイルを保存", verify_ok: "検証に成功しました",
    verify_failed: "検証に失敗しました", verified_records: "検証した記録",
    verified_checkpoints: "検証したチェックポイント", unchecked_tail: "未検証の末尾",
    problem: "問題",
    export_period: "この期間の記録を書き出す",
    export_need_period: "書き出す期間（開始日または終了日）を入力してください。",
    consistency_text: "署名と整合性の証明は、このブラウザーが公開鍵で確かめます。",
    saved_checkpoint: "保存したチェックポイントのファイル",
    key_file: "チェックポイントの公開鍵のファイル（省略するとゲートウェイの公開鍵）",
    cc_ok: "整合しています。保存したチェックポイント（{old}件）の記録は、今日のチェックポイント（{new}件）の先頭にそのまま含まれています。",
    cc_failed: "整合性を確認できませんでした",
    cc_saved_checkpoint: "保存したチェックポイントの署名を確認できません",
    cc_todays_checkpoint: "今日のチェックポイントの署名を確認できません",
    cc_different_logs: "二つのチェックポイントは別の記録のものです",
    cc_proof: "整合性の証明が成り立ちません（記録が書き換えられたおそれがあります）",
    cc_keys: "公開鍵のファイルを読めません",
    cc_what: "確認した内容", cc_saved: "保存したチェックポイント", cc_today: "今日のチェックポイント",
    cc_size: "記録の件数", cc_key: "鍵の版", cc_keys_from: "公開鍵",
    cc_keys_own: "選んだファイル", cc_keys_gateway: "ゲートウェイの公開鍵",
    throughput_hour: "直近1時間の件数（1分ごと）",
    th_accepted: "受付", th_answered: "回答あり", th_failed: "失敗",
    purpose: "用途", version: "版", state: "状態", created_at: "作成日時",
    fingerprint: "指紋", protects: "保護している値", rotate: "更新を始める",
    retire: "廃止", approve: "承認", request_id: "依頼番号", action: "操作",
    requested_by: "依頼者", own_request: "自分の依頼（他の担当者が承認します）",
    no_requests: "承認待ちの依頼はありません。", pending: "承認待ちになりました（依頼番号 {id}）。",
    rotated: "{purpose} の鍵を第{version}版にしました。",
    active_version: "使用中の保存用鍵の版", remaining: "再暗号化の残り",
    check_name: "確認項目", ok: "正常", not_ok: "異常", detail: "内容",
    ready: "稼動準備ができています", not_ready: "稼動準備ができていません",
    status_name: "状態", count: "件数", scheduled_jobs: "予定された処理",
    awaiting_code: "符号の取得待ち", inquiries: "照会", persons: "対象者", records: "記録",
    batch_id: "一括ファイル番号", received_at: "受付日時", lines: "行数", accepted: "受付",
    rejected: "不受理", progress: "進み具合", date: "日付", st_queued: "送信待ち",
    st_awaiting_code: "符号待ち", st_sent: "送信済み", st_answered: "回答あり", st_failed: "失敗",
    no_rows: "この月の統計はありません。", updated: "更新", flow: "処理の流れ（起動してから）",
    accepted_total: "受け付けた照会", throughput: "完了の速さ（件/分）", platform: "プラットフォームとの通信",
    keystate_active: "使用中", "keystate_verify-only": "検証・復号のみ", keystate_retired: "廃止済み",
    purpose_signing: "署名", purpose_sealing: "封緘", "purpose_at-rest": "保存データの暗号化",
    "purpose_blind-index": "検索用索引", purpose_checkpoint: "チェックポイントの署名",
    action_rotate: "更新", action_retire: "廃止", retired: "{purpose} の第{version}版を廃止しました。",
    signed_in: "{user} としてサインインしました。", signed_out: "サインアウトしました。",
    certificate: "証明書: {client}（{role}）",
    role_auditor: "監査担当", role_security: "セキュリティ担当", role_operator: "運用担当",
    role_admin: "管理者",
    e_sign_in_failed: "サインインできませんでした。利用者名、パスワード、確認コードを確かめてください。",
    e_account_locked: "失敗が続いたため、このアカウントは一時的にロックされています。しばらく待ってから、やり直してください。",
    e_session_expired: "セッションの有効期限が切れました。もう一度サインインしてください。",
    e_session_required: "サインインしてください。",
    e_session_mismatch: "この証明書の利用者ではありません。",
    e_wrong_role: "この役割では、この画面は使えません。",
    e_same_officer: "自分の依頼は承認できません。別のセキュリティ担当者が承認します。",
    e_person_not_found: "この業務システムに、この宛名番号の対象者はいません。",
    e_invalid_query: "検索条件が正しくありません。",
    e_network: "ゲートウェイに接続できませんでした。",
    e_other: "処理できませんでした。",
  },
  en: {
    skip: "Skip to content", title: "renkei console", signout: "Sign out",
    nav_audit: "Records", nav_verify: "Verification", nav_keys: "Keys", nav_ops: "Operations",
    signin: "Sign in", user: "User", password: "Password", totp: "Code (6 digits)",
    home: "Welcome", home_text: "Choose a task from the menu above.",
    who_person: "Person", person: "Unified address number", business_system: "Business system",
    business_number: "Business number (with the business system)", period: "Period",
    from: "From", to: "To (exclusive)", conditions: "Conditions", kind: "Kind", any: "Any",
    kind_inquiry: "Inquiry", kind_provision: "Provision", kind_code_acquisition: "Code acquisition",
    kind_denied_request: "Denied request", kind_staff_action: "Staff action",
    kind_key_action: "Key action", kind_retention_sweep: "Retention sweep",
    procedure: "Procedure code", item: "Item code", result: "Result",
    result_answered: "Answered", result_not_held: "Not held", result_refused: "Refused",
    result_failed: "Failed", result_accepted: "Accepted", result_done: "Done",
    page_size: "Page size", search: "Search", csv: "Download CSV",
    export_person: "Export this person's records", newer: "Newer", older: "Older",
    record: "Record", back: "Back to the results", verify_live: "Verify now",
    consistency: "Consistency with a saved checkpoint", check: "Check",
    reencryption: "Re-encryption progress", requests: "Requests awaiting approval",
    readiness: "Readiness", queue: "Inquiries by status", totals: "Totals held",
    batches: "Batch files", business_stats: "Business statistics", month: "Month", show: "Show",
    open: "Open", seq: "Seq", requested_at: "Requested at", provided_at: "Provided at",
    inquirer: "Inquirer (agency)", provider: "Provider (agency)", serial: "Processing serial",
    reason: "Reason", non_disclosure: "Non-disclosure", staff_actor: "Staff member",
    staff_action: "Action", staff_terminal: "Terminal", staff_target: "Target",
    staff_fingerprint: "Certificate fingerprint", reference: "Reference", yes: "yes", no: "no",
    none_found: "No records match.", records_shown: "shown",
    csv_done: "CSV ready ({n} lines).", export_done: "Exported {n} records.",
    export_need_person: "Enter the person's unified address number to export.",
    download_bundle: "Save the exported files", verify_ok: "Verification succeeded",
    verify_failed: "Verification FAILED", verified_records: "Records verified",
    verified_checkpoints: "Checkpoints verified", unchecked_tail: "Unchecked tail",
    problem: "Problem",
    export_period: "Export this period's records",
    export_need_period: "Enter the period to export (a start or an end date).",
    consistency_text: "This browser checks the signatures and the consistency proof itself, with the public keys.",
    saved_checkpoint: "Saved checkpoint file",
    key_file: "Checkpoint public key file (if none, the gateway's public keys)",
    cc_ok: "Consistent: the {old} records of the saved checkpoint are, unchanged, the start of today's checkpoint ({new} records).",
    cc_failed: "Consistency NOT shown",
    cc_saved_checkpoint: "The saved checkpoint's signature does not verify",
    cc_todays_checkpoint: "Today's checkpoint's signature does not verify",
    cc_different_logs: "The two checkpoints are of different logs",
    cc_proof: "The consistency proof does not hold (records may have been rewritten)",
    cc_keys: "The public key file cannot be read",
    cc_what: "Checked", cc_saved: "Saved checkpoint", cc_today: "Today's checkpoint",
    cc_size: "Records", cc_key: "Key version", cc_keys_from: "Public keys",
    cc_keys_own: "the file chosen", cc_keys_gateway: "the gateway's public keys",
    throughput_hour: "The last hour, per minute",
    th_accepted: "Accepted", th_answered: "Answered", th_failed: "Failed",
    purpose: "Purpose", version: "Version", state: "State", created_at: "Created at",
    fingerprint: "Fingerprint", protects: "Values protected", rotate: "Start rotation",
    retire: "Retire", approve: "Approve", request_id: "Request", action: "Action",
    requested_by: "Requested by", own_request: "Your request (another officer approves)",
    no_requests: "No request is waiting.", pending: "Waiting for a second officer (request {id}).",
    rotated: "{purpose} key is now version {version}.",
    active_version: "Active at-rest version", remaining: "Still to re-encrypt",
    check_name: "Check", ok: "OK", not_ok: "Failing", detail: "Detail",
    ready: "Ready", not_ready: "Not ready", status_name: "Status", count: "Count",
    scheduled_jobs: "Scheduled jobs", awaiting_code: "Awaiting a code", inquiries: "Inquiries",
    persons: "Persons", records: "Records", batch_id: "Batch", received_at: "Received at",
    lines: "Lines", accepted: "Accepted", rejected: "Rejected", progress: "Progress",
    date: "Date", st_queued: "Queued", st_awaiting_code: "Awaiting code", st_sent: "Sent",
    st_answered: "Answered", st_failed: "Failed", no_rows: "No statistics for this month.",
    flow: "Flow since start", accepted_total: "Inquiries accepted", throughput: "Finished per minute",
    platform: "Platform exchanges",
    keystate_active: "active", "keystate_verify-only": "verify only", keystate_retired: "retired",
    purpose_signing: "signing", purpose_sealing: "sealing", "purpose_at-rest": "at rest",
    "purpose_blind-index": "blind index", purpose_checkpoint: "checkpoint signing",
    action_rotate: "rotate", action_retire: "retire", retired: "{purpose} version {version} is retired.",
    updated: "Updated", signed_in: "Signed in as {user}.", signed_out: "Signed out.",
    certificate: "Certificate: {client} ({role})",
    role_auditor: "auditor", role_security: "security officer", role_operator: "operator",
    role_admin: "administrator",
    e_sign_in_failed: "Sign-in failed. Check the user, password and code.",
    e_account_locked: "This account is locked after repeated failures. Wait and try again.",
    e_session_expired: "The session has expired. Sign in again.",
    e_session_required: "Sign in first.",
    e_session_mismatch: "This user is not bound to this certificate.",
    e_wrong_role: "Your role may not use this page.",
    e_same_officer: "You cannot approve your own request; another officer must.",
    e_person_not_found: "No person has this business number in this system.",
    e_invalid_query: "The search conditions are not valid.",
    e_network: "The gateway could not be reached.",
    e_other: "The request could not be completed.",
  },
};

let lang = localStorage.getItem(LANG) === "en" ? "en" : "ja";
let eras = [];
let me = null; // {client, role}
let timer = null;
let lastPage = null; // the latest page of records, for opening one
let pages = []; // `before` cursors of the pages seen, for "newer"
let lastExport = null;
let lastCounts = null; // the operator's previous reading, for the throughput

const $ = (id) => document.getElementById(id);

function t(key, vars) {
  let s = (TEXT[lang] && TEXT[lang][key]) || TEXT.ja[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", String(v));
  return s;
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function applyLanguage() {
  document.documentElement.lang = lang;
  for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  document.title = t("title");
  $("lang").textContent = lang === "ja" ? "English" : "日本語";
  $("lang").lang = lang === "ja" ? "en" : "ja";
  showWho();
}

// ---- dates: 西暦 and 和暦 -------------------------------------------------------------

/// "2026-12-03" → "令和8年12月3日" from the gateway's era table.
function wareki(ymd) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(ymd || "");
  if (!m) return "";
  let era = null;
  for (const e of eras) if (e.start <= m[0]) era = e;
  if (!era) return "";
  const y = Number(m[1]) - Number(era.start.slice(0, 4)) + 1;
  return era.name + (y === 1 ? "元" : y) + "年" + Number(m[2]) + "月" + Number(m[3]) + "日";
}

/// An RFC 3339 time as JST "YYYY-MM-DD HH:MM:SS (和暦)".
function when(rfc3339) {
  if (!rfc3339) return "";
  const d = new Date(rfc3339);
  if (isNaN(d)) return rfc3339;
  const j = new Date(d.getTime() + 9 * 3600 * 1000).toISOString(); // JST wall clock
  const ymd = j.slice(0, 10);
  return ymd + " " + j.slice(11, 19) + " (" + wareki(ymd) + ")";
}

// ---- the API --------------------------------------------------------------------------

class Refusal extends Error {
  constructor(status, body) {
    super((body && body.code) || "http_" + status);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN);
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (e) {
    throw new Refusal(0, { code: "network" });
  }
  const type = r.headers.get("content-type") || "";
  const data = type.includes("json") ? await r.json() : await r.text();
  if (r.ok) return data;
  const code = data && data.code;
  if (r.status === 401 && code && code.startsWith("session") && path !== "/v1/session") {
    sessionStorage.removeItem(TOKEN);
    route();
  }
  throw new Refusal(r.status, data);
}

function showError(e) {
  const code = (e && e.body && e.body.code) || (e && e.message) || "other";
  const known = TEXT.ja["e_" + code] !== undefined;
  const box = $("error");
  box.replaceChildren(
    el("span", { text: known ? t("e_" + code) : t("e_other") }),
    " ",
    el("code", { class: "code", text: code }),
  );
  box.hidden = false;
  box.dataset.code = code;
}

function clearMessages() {
  $("error").hidden = true;
  $("error").dataset.code = "";
  $("status").textContent = "";
}

function say(text) {
  $("status").textContent = text;
}

// ---- tables ---------------------------------------------------------------------------

function table(id, headers, rows) {
  const tb = el("tbody");
  for (const r of rows) tb.append(el("tr", {}, ...r.map((c) => el("td", {}, c))));
  return el(
    "table",
    { id },
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col", text: h })))),
    tb,
  );
}

// ---- sign-in --------------------------------------------------------------------------

function showWho() {
  if (!me) return;
  const role = t("role_" + me.role);
  $("cert").textContent = t("certificate", { client: me.client, role });
  const user = sessionStorage.getItem(USER);
  $("who").textContent = user ? user + " / " + role : "";
}

async function signIn(ev) {
  ev.preventDefault();
  clearMessages();
  const user = $("user").value.trim();
  try {
    const s = await api("POST", "/v1/session", {
      user,
      password: $("password").value,
      totp: $("totp").value.trim(),
    });
    sessionStorage.setItem(TOKEN, s.token);
    sessionStorage.setItem(USER, user);
    $("password").value = "";
    $("totp").value = "";
    location.hash = "#" + homeOf(me && me.role);
    route();
    say(t("signed_in", { user }));
  } catch (e) {
    $("totp").value = "";
    showError(e);
    $("password").focus();
  }
}

async function signOut() {
  clearMessages();
  try {
    await api("DELETE", "/v1/session");
  } catch (e) {
    // Already ended: the token goes either way.
  }
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(USER);
  location.hash = "";
  route();
  say(t("signed_out"));
}

function homeOf(role) {
  return { auditor: "audit", security: "keys", operator: "ops" }[role] || "home";
}

// ---- auditor ---------------------------------------------------------------------------

function auditQuery(extra) {
  const p = new URLSearchParams();
  const set = (name, id) => {
    const v = $(id).value.trim();
    if (v) p.set(name, v);
  };
  set("person", "q-person");
  set("business_number", "q-business-number");
  set("system", "q-system");
  set("from", "q-from");
  set("to", "q-to");
  set("kind", "q-kind");
  set("procedure", "q-procedure");
  set("item", "q-item");
  set("result", "q-result");
  set("limit", "q-limit");
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p;
}

async function search(before) {
  clearMessages();
  const extra = before === undefined || before === null ? {} : { before };
  try {
    const page = await api("GET", "/v1/audit/records?" + auditQuery(extra));
    lastPage = page;
    renderRecords(page);
    $("audit-older").hidden = page.next_before === undefined;
    $("audit-older").dataset.before = page.next_before === undefined ? "" : page.next_before;
    $("audit-newer").hidden = pages.length === 0;
  } catch (e) {
    showError(e);
  }
}

function label(prefix, v) {
  return v ? t(prefix + v) : "";
}

/// The label of a code with the code itself: "署名 (signing)".
function coded(prefix, v) {
  const known = TEXT.ja[prefix + v] !== undefined;
  return known && t(prefix + v) !== v ? t(prefix + v) + " (" + v + ")" : String(v);
}

function renderRecords(page) {
  const box = $("audit-results");
  if (!page.records.length) {
    box.replaceChildren(el("p", { id: "audit-none", text: t("none_found") }));
    return;
  }
  const rows = page.records.map((r) => [
    String(r.seq),
    label("kind_", r.kind),
    when(r.requested_at),
    r.business_system || "",
    r.procedure || "",
    r.item || "",
    r.person || "",
    label("result_", r.result),
    el("a", { href: "#record/" + r.seq, class: "open", text: t("open") }),
  ]);
  box.replaceChildren(
    el("p", { id: "audit-count", text: page.records.length + " " + t("records_shown") }),
    table(
      "records",
      [
        t("seq"), t("kind"), t("requested_at"), t("business_system"), t("procedure"),
        t("item"), t("person"), t("result"), "",
      ],
      rows,
    ),
  );
}

function showRecord(seq) {
  const r = lastPage && lastPage.records.find((x) => String(x.seq) === seq);
  const dl = $("record-fields");
  if (!r) {
    // Only records of the page just searched (and recorded as viewed) are opened.
    location.hash = "#audit";
    return;
  }
  const s = r.staff || {};
  const fields = [
    ["seq", String(r.seq)],
    ["kind", label("kind_", r.kind)],
    ["requested_at", when(r.requested_at)],
    ["provided_at", when(r.provided_at)],
    ["inquirer", r.inquirer],
    ["provider", r.provider],
    ["procedure", r.procedure],
    ["item", r.item],
    ["person", r.person],
    ["business_system", r.business_system],
    ["serial", r.serial],
    ["result", label("result_", r.result)],
    ["reason", r.reason],
    ["non_disclosure", r.non_disclosure ? t("yes") : t("no")],
    ["staff_actor", s.actor],
    ["staff_action", s.action],
    ["staff_target", s.target],
    ["staff_terminal", s.terminal],
    ["staff_fingerprint", s.certificate_fingerprint],
    ["reference", r.reference],
  ];
  dl.replaceChildren();
  for (const [k, v] of fields) {
    dl.append(el("dt", { text: t(k) }), el("dd", { "data-field": k, text: v || "—" }));
  }
}

async function downloadCsv() {
  clearMessages();
  try {
    const text = await api("GET", "/v1/audit/records?" + auditQuery({ format: "csv" }));
    const lines = text.split("\r\n").filter((l) => l.length).length;
    save("renkei-records.csv", "text/csv", text);
    say(t("csv_done", { n: lines }));
    $("audit-export-result").dataset.csvLines = lines;
  } catch (e) {
    showError(e);
  }
}

function save(name, type, text) {
  saveBytes(name, type, new Blob([text], { type }));
}

function saveBytes(name, type, blob) {
  const url = URL.createObjectURL(new Blob([blob], { type }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/// Exports a bundle (`body`: a person, or a period) and offers it as one tar file: the
/// bundle's folder, as `renkei audit verify` reads it once unpacked.
async function exportBundle(body, name) {
  clearMessages();
  const box = $("audit-export-result");
  try {
    const b = await api("POST", "/v1/audit/export", body);
    lastExport = b;
    const names = Object.keys(b.files);
    box.replaceChildren(
      el("p", { id: "export-done", "data-records": b.records, text: t("export_done", { n: b.records }) }),
      el("ul", {}, ...names.map((n) => el("li", { text: n }))),
      el("button", {
        id: "export-save",
        type: "button",
        text: t("download_bundle"),
        onclick: () => saveBytes(name + ".tar", "application/x-tar", tar(lastExport.files)),
      }),
    );
  } catch (e) {
    showError(e);
  }
}

function exportPerson() {
  const person = $("q-person").value.trim();
  if (!person) {
    clearMessages();
    say(t("export_need_person"));
    $("q-person").focus();
    return;
  }
  exportBundle({ person }, "renkei-bundle-person");
}

function exportPeriod() {
  const from = $("q-from").value;
  const to = $("q-to").value;
  if (!from && !to) {
    clearMessages();
    say(t("export_need_period"));
    $("q-from").focus();
    return;
  }
  const body = {};
  if (from) body.from = from;
  if (to) body.to = to;
  exportBundle(body, "renkei-bundle-" + (from || "start") + "-" + (to || "now"));
}

/// A POSIX (ustar) archive of text files, `files` being name → text: one 512-byte header per
/// file (octal fields, the checksum over the header), the UTF-8 text padded to 512 bytes, and
/// two zero blocks at the end.
function tar(files) {
  const enc = new TextEncoder();
  const blocks = [];
  const field = (h, at, len, text) => h.set(enc.encode(text).slice(0, len), at);
  const octal = (n, len) => n.toString(8).padStart(len - 1, "0") + "\0";
  for (const [name, text] of Object.entries(files)) {
    const data = enc.encode(text);
    const h = new Uint8Array(512);
    field(h, 0, 100, name);
    field(h, 100, 8, octal(0o644, 8));
    field(h, 108, 8, octal(0, 8));
    field(h, 116, 8, octal(0, 8));
    field(h, 124, 12, octal(data.length, 12));
    field(h, 136, 12, octal(Math.floor(Date.now() / 1000), 12));
    field(h, 148, 8, "        ");
    field(h, 156, 1, "0");
    field(h, 257, 6, "ustar\0");
    field(h, 263, 2, "00");
    const sum = h.reduce((a, b) => a + b, 0);
    field(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
    blocks.push(h, data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  return new Blob(blocks);
}

async function verifyLive() {
  clearMessages();
  const box = $("verify-result");
  box.replaceChildren(el("p", { text: "…" }));
  try {
    const v = await api("GET", "/v1/audit/verify");
    const items = [
      el("p", { id: "verify-outcome", class: v.ok ? "ok" : "bad", "data-ok": String(v.ok), text: v.ok ? t("verify_ok") : t("verify_failed") }),
      table("verify-table", [t("check_name"), t("count")], [
        [t("verified_records"), String(v.records)],
        [t("verified_checkpoints"), String(v.checkpoints_verified)],
        [t("unchecked_tail"), String(v.unchecked_tail)],
      ]),
    ];
    if (v.problem) {
      items.push(el("p", { id: "verify-problem", text: t("problem") + ": " + v.problem.kind + " — " + v.problem.detail }));
    }
    box.replaceChildren(...items);
  } catch (e) {
    box.replaceChildren();
    showError(e);
  }
}

// ---- a saved checkpoint against today's, checked here ---------------------------------------
// The browser checks both signatures (ECDSA P-256 / SHA-256, WebCrypto) and the RFC 9162
// consistency proof itself, with the auditor's key file or else the gateway's public keys:
// the gateway only hands over today's checkpoint and the proof, it says nothing is "ok".
// The same checks as `renkei audit verify --since` (renkei_records::verify_growth).

/// A failed check: which one (`kind`, the key of its message) and why.
class CheckFailure extends Error {
  constructor(kind, detail) {
    super(detail);
    this.kind = kind;
  }
}

const utf8 = new TextEncoder();

/// Strict base64 (as the gateway writes it): decodes, and refuses what does not encode back
/// to the same text.
function unbase64(s, kind, what) {
  let bin;
  try {
    bin = atob(s);
  } catch (e) {
    throw new CheckFailure(kind, what + ": not base64");
  }
  if (btoa(bin) !== s) throw new CheckFailure(kind, what + ": not base64");
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(...parts) {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", all));
}

/// RFC 9162 interior node: SHA-256(0x01 || left || right). (Leaves are SHA-256(0x00 || entry);
/// a consistency proof holds node hashes only.)
const NODE = Uint8Array.of(0x01);
function nodeHash(left, right) {
  return sha256(NODE, left, right);
}

/// Reads a C2SP signed checkpoint note (the file `renkei audit checkpoint` saves): the six
/// lines of the body in their one canonical spelling, then a blank line and the signature
/// lines `— <key name> <base64(key ID || DER signature)>`.
function parseCheckpoint(text, kind) {
  const bad = (why) => new CheckFailure(kind, why);
  if (!text.endsWith("\n")) throw bad("the note does not end in a newline");
  if (/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text)) throw bad("control character in the note");
  const split = text.lastIndexOf("\n\n");
  if (split < 0) throw bad("no blank line before the signatures");
  const body = text.slice(0, split + 1);
  const signatures = text
    .slice(split + 2, -1)
    .split("\n")
    .map((line) => {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m) throw bad("a signature line must read '— <name> <signature>'");
      const raw = unbase64(m[2], kind, "signature line");
      if (raw.length < 5) throw bad("signature too short");
      return { name: m[1], keyId: raw.slice(0, 4), signature: raw.slice(4) };
    });
  const lines = body.slice(0, -1).split("\n");
  if (lines.length !== 6) throw bad("expected origin, size, root and the three renkei extension lines");
  const [origin, size, root, head, created, version] = lines;
  if (!/^[!#-*,-[\]-~]+$/.test(origin)) throw bad("bad origin line");
  if (!/^(0|[1-9][0-9]*)$/.test(size)) throw bad("bad tree size");
  const rootBytes = unbase64(root, kind, "root");
  if (rootBytes.length !== 32) throw bad("the root is not 32 bytes");
  const h = /^chain-head (\S+)$/.exec(head);
  if (!h || unbase64(h[1], kind, "chain head").length !== 32) throw bad("line 4 is not chain-head");
  const c = /^created-at (\S+)$/.exec(created);
  if (!c) throw bad("line 5 is not created-at");
  const v = /^key-version (0|[1-9][0-9]*)$/.exec(version);
  if (!v) throw bad("line 6 is not key-version");
  return {
    origin, size: BigInt(size), root: rootBytes, createdAt: c[1], keyVersion: v[1], body, signatures,
  };
}

/// ECDSA's DER signature (SEQUENCE of two INTEGERs) as the 64 bytes r || s WebCrypto takes.
function derToRaw(der, kind) {
  const bad = () => new CheckFailure(kind, "the signature is not a DER ECDSA P-256 signature");
  let i = 0;
  if (der[i++] !== 0x30) throw bad();
  let len = der[i++];
  if (len === 0x81) len = der[i++];
  else if (len > 0x7f) throw bad();
  if (i + len !== der.length) throw bad();
  const raw = new Uint8Array(64);
  for (const at of [0, 32]) {
    if (der[i++] !== 0x02) throw bad();
    const n = der[i++];
    if (!n || i + n > der.length) throw bad();
    let v = der.slice(i, i + n);
    i += n;
    while (v.length > 32 && v[0] === 0) v = v.slice(1);
    if (v.length > 32) throw bad();
    raw.set(v, at + 32 - v.length);
  }
  if (i !== der.length) throw bad();
  return raw;
}

/// A PEM public key for WebCrypto, with its signed-note key ID (SHA-256 of the DER
/// SubjectPublicKeyInfo, first 4 bytes).
async function importPem(pem) {
  const m = /-----BEGIN PUBLIC KEY-----([^-]+)-----END PUBLIC KEY-----/.exec(pem);
  if (!m) throw new CheckFailure("keys", "no PUBLIC KEY block");
  const der = unbase64(m[1].replace(/\s+/g, ""), "keys", "PEM");
  let key;
  try {
    key = await crypto.subtle.importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
  } catch (e) {
    throw new CheckFailure("keys", "not a P-256 public key");
  }
  return { key, keyId: (await sha256(der)).slice(0, 4) };
}

/// The auditor's key file (`renkei audit public-keys`: a `# … version N` line before each
/// PEM block; one block without such a line is a single key for every version), or else
/// the gateway's public keys. Returns version → key ("*" for a single key).
async function checkpointKeys() {
  const file = $("c-keys").files[0];
  const pems = new Map();
  if (file) {
    const text = await file.text();
    const blocks = text.match(/-----BEGIN PUBLIC KEY-----[^-]+-----END PUBLIC KEY-----/g) || [];
    let version = null;
    for (const line of text.split("\n")) {
      const v = /^#.*version\s+([0-9]+)\s*$/.exec(line.trim());
      if (v) version = v[1];
      else if (line.trim() === "-----BEGIN PUBLIC KEY-----") {
        pems.set(version === null ? "*" : version, blocks[pems.size]);
        version = null;
      }
    }
    if (!pems.size || pems.size !== blocks.length) throw new CheckFailure("keys", file.name);
  } else {
    for (const [v, pem] of Object.entries(await api("GET", "/v1/audit/public-keys"))) pems.set(v, pem);
  }
  const keys = new Map();
  for (const [v, pem] of pems) keys.set(v, await importPem(pem));
  return { keys, from: file ? "own" : "gateway" };
}

/// The checkpoint's signature by the key of its `key-version`, under the key name of its
/// origin, or a CheckFailure of `kind`.
async function verifyCheckpoint(cp, keys, kind) {
  const key = keys.get(cp.keyVersion) || keys.get("*");
  if (!key) throw new CheckFailure(kind, "no public key of version " + cp.keyVersion);
  const line = cp.signatures.find((s) => s.name === cp.origin && sameBytes(s.keyId, key.keyId));
  if (!line) throw new CheckFailure(kind, "no signature by the key of version " + cp.keyVersion);
  const raw = derToRaw(line.signature, kind);
  const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key.key, raw, utf8.encode(cp.body));
  if (!ok) throw new CheckFailure(kind, "the signature of key version " + cp.keyVersion + " does not verify");
}

/// RFC 9162 §2.1.4.2: does `proof` show the tree of `oldSize` leaves with root `oldRoot` is
/// a prefix of the one of `newSize` leaves with root `newRoot`? Null when it does, else why
/// not (the names of renkei_records::ConsistencyError). Sizes are BigInt.
async function consistencyProblem(oldSize, oldRoot, newSize, newRoot, proof) {
  if (newSize < oldSize) return "shrunk";
  if (oldSize === newSize) {
    if (!sameBytes(oldRoot, newRoot)) return "same_size_different_roots";
    return proof.length ? "unexpected_proof" : null;
  }
  if (oldSize === 0n) return proof.length ? "unexpected_proof" : null;
  if (!proof.length) return "wrong_length";
  const path = (oldSize & (oldSize - 1n)) === 0n ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1n;
  let sn = newSize - 1n;
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) return "wrong_length";
    if (fn & 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (!(fn & 1n) && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) return "wrong_length";
  if (!sameBytes(fr, oldRoot)) return "old_root_mismatch";
  if (!sameBytes(sr, newRoot)) return "new_root_mismatch";
  return null;
}

/// Saved checkpoint, then today's (from the gateway, with the proof), then the proof.
async function checkGrowth(savedText) {
  const { keys, from } = await checkpointKeys();
  const saved = parseCheckpoint(savedText, "saved_checkpoint");
  await verifyCheckpoint(saved, keys, "saved_checkpoint");
  const c = await api("GET", "/v1/audit/consistency?from=" + saved.size);
  const today = parseCheckpoint(c.checkpoint, "todays_checkpoint");
  await verifyCheckpoint(today, keys, "todays_checkpoint");
  if (saved.origin !== today.origin) {
    throw new CheckFailure("different_logs", saved.origin + " / " + today.origin);
  }
  const proof = c.proof.map((h) => unbase64(h, "proof", "proof hash"));
  const problem = await consistencyProblem(saved.size, saved.root, today.size, today.root, proof);
  if (problem) throw new CheckFailure("proof", problem);
  return { saved, today, from };
}

async function checkConsistency(ev) {
  ev.preventDefault();
  clearMessages();
  const box = $("consistency-result");
  const file = $("c-file").files[0];
  if (!file) return;
  box.replaceChildren(el("p", { text: "…" }));
  let result;
  try {
    result = await checkGrowth(await file.text());
  } catch (e) {
    if (!(e instanceof CheckFailure)) {
      box.replaceChildren();
      showError(e);
      return;
    }
    box.replaceChildren(
      el("p", { id: "consistency-outcome", class: "bad", "data-ok": "false", "data-failure": e.kind, text: t("cc_failed") }),
      el("p", { id: "consistency-problem", text: t("cc_" + e.kind) + ": " + e.message }),
    );
    return;
  }
  const { saved, today, from } = result;
  box.replaceChildren(
    el("p", {
      id: "consistency-outcome", class: "ok", "data-ok": "true", "data-old": String(saved.size), "data-new": String(today.size),
      text: t("cc_ok", { old: saved.size, new: today.size }),
    }),
    table("consistency-table", [t("cc_what"), t("cc_size"), t("created_at"), t("cc_key")], [
      [t("cc_saved"), String(saved.size), when(saved.createdAt), saved.keyVersion],
      [t("cc_today"), String(today.size), when(today.createdAt), today.keyVersion],
    ]),
    el("p", { class: "small", text: t("cc_keys_from") + ": " + t(from === "own" ? "cc_keys_own" : "cc_keys_gateway") }),
  );
}

// ---- security officer -------------------------------------------------------------------

async function loadKeys() {
  const [keys, status, requests] = await Promise.all([
    api("GET", "/v1/keys"),
    api("GET", "/v1/keys/status"),
    api("GET", "/v1/keys/requests"),
  ]);
  const keyRows = keys.map((k) => {
    const action =
      k.status === "active"
        ? el("button", { type: "button", class: "rotate", "data-purpose": k.purpose, text: t("rotate"), onclick: () => rotate(k.purpose) })
        : k.status === "verify-only"
          ? el("button", { type: "button", class: "retire", "data-purpose": k.purpose, "data-version": k.version, text: t("retire"), onclick: () => retire(k.purpose, k.version) })
          : "";
    return [
      coded("purpose_", k.purpose),
      String(k.version),
      coded("keystate_", k.status),
      when(k.created_at),
      k.fingerprint || "",
      k.protects === undefined ? "" : String(k.protects),
      action,
    ];
  });
  $("keys-table").replaceChildren(
    table("keys", [t("purpose"), t("version"), t("state"), t("created_at"), t("fingerprint"), t("protects"), ""], keyRows),
  );
  keys.forEach((k, i) => {
    const tr = $("keys").tBodies[0].rows[i];
    tr.dataset.purpose = k.purpose;
    tr.dataset.version = k.version;
    tr.dataset.state = k.status;
  });
  $("keys-status").replaceChildren(
    table("keys-progress", [t("check_name"), t("count")], [
      [t("active_version"), String(status.active_at_rest_version)],
      [t("remaining"), String(status.remaining)],
      ...Object.entries(status.at_rest_usage).map(([v, n]) => [t("version") + " " + v, String(n)]),
    ]),
  );
  const user = sessionStorage.getItem(USER);
  $("keys-requests").replaceChildren(
    requests.length
      ? table(
          "key-requests",
          [t("request_id"), t("action"), t("purpose"), t("requested_by"), t("requested_at"), ""],
          requests.map((r) => [
            r.id,
            coded("action_", r.action),
            coded("purpose_", r.purpose),
            r.requested_by,
            when(r.requested_at),
            r.requested_by === user
              ? el("span", { class: "own", text: t("own_request") })
              : el("button", { type: "button", class: "approve", "data-id": r.id, text: t("approve"), onclick: () => approve(r.id) }),
          ]),
        )
      : el("p", { id: "no-requests", text: t("no_requests") }),
  );
}

function outcome(o) {
  const done = o.status === "retired" ? "retired" : "rotated";
  const text = o.status === "pending_approval" ? t("pending", { id: o.id }) : t(done, { purpose: o.purpose, version: o.version });
  $("keys-result").replaceChildren(el("p", { id: "key-outcome", "data-status": o.status, text }));
}

/// A key request (rotate, retire, approve): its outcome, then the fresh lists.
async function keyAction(path) {
  clearMessages();
  try {
    outcome(await api("POST", path));
    await loadKeys();
  } catch (e) {
    showError(e);
  }
}

function rotate(purpose) {
  return keyAction("/v1/keys/" + encodeURIComponent(purpose) + "/rotate");
}

function retire(purpose, version) {
  return keyAction("/v1/keys/" + encodeURIComponent(purpose) + "/" + version + "/retire");
}

function approve(id) {
  return keyAction("/v1/keys/requests/" + encodeURIComponent(id) + "/approve");
}

// ---- operator ------------------------------------------------------------------------------

/// An inquiry's states in the order it passes them.
const STATUSES = ["queued", "awaiting_code", "sent", "answered", "failed"];

async function loadOps() {
  const [ready, queue, stats, batches, flow] = await Promise.all([
    api("GET", "/v1/ops/readiness"),
    api("GET", "/v1/ops/queue"),
    api("GET", "/v1/ops/stats"),
    api("GET", "/v1/ops/batches"),
    api("GET", "/v1/ops/throughput"),
  ]);
  renderThroughput(flow.series);
  $("ops-readiness").replaceChildren(
    el("p", { id: "ready-status", class: ready.status === "ready" ? "ok" : "bad", "data-status": ready.status, text: t(ready.status) }),
    table(
      "readiness-checks",
      [t("check_name"), t("state"), t("detail")],
      ready.checks.map((c) => [c.name, c.ok ? t("ok") : t("not_ok"), c.detail]),
    ),
  );
  $("ops-queue").replaceChildren(
    table(
      "queue",
      [t("status_name"), t("count")],
      [
        ...STATUSES.filter((s) => s in queue.inquiries_by_status).map((s) => [
          el("span", { text: t("st_" + s) }),
          el("span", { "data-status": s, class: "n", text: String(queue.inquiries_by_status[s]) }),
        ]),
        [t("scheduled_jobs"), String(queue.scheduled_jobs)],
        [t("awaiting_code"), String(queue.awaiting_code)],
      ],
    ),
    el("p", { class: "small", text: t("updated") + " " + when(new Date().toISOString()) }),
  );
  // Throughput from two readings of the counters since the gateway started.
  const since = queue.since_start;
  const now = Date.now();
  let rate = "";
  if (lastCounts && now > lastCounts.at) {
    const perMin = ((since.answered + since.failed - lastCounts.finished) * 60000) / (now - lastCounts.at);
    rate = perMin.toFixed(1);
  }
  lastCounts = { at: now, finished: since.answered + since.failed };
  $("ops-flow").replaceChildren(
    table(
      "flow",
      [t("check_name"), t("count")],
      [
        [t("accepted_total"), el("span", { id: "flow-accepted", text: String(since.accepted) })],
        [t("st_answered"), String(since.answered)],
        [t("st_failed"), String(since.failed)],
        [t("throughput"), rate],
        ...Object.entries(since.platform_requests).map(([o, n]) => [
          t("platform") + ": " + o,
          el("span", { "data-outcome": o, text: String(n) }),
        ]),
      ],
    ),
  );
  $("ops-stats").replaceChildren(
    table("totals", [t("check_name"), t("count")], [
      [t("inquiries"), String(stats.inquiries)],
      [t("persons"), String(stats.persons)],
      [t("records"), String(stats.records)],
    ]),
  );
  $("ops-batches").replaceChildren(
    table(
      "batch-list",
      [t("batch_id"), t("business_system"), t("state"), t("received_at"), t("lines"), t("accepted"), t("rejected"), t("progress")],
      batches.map((b) => [
        b.id, b.business_system, String(b.status), when(b.received_at), String(b.lines),
        String(b.accepted), String(b.rejected),
        Object.entries(b.progress || {}).map(([k, v]) => k + ": " + v).join(", "),
      ]),
    ),
  );
}

const FLOWS = ["accepted", "answered", "failed"];

/// The last hour per minute as an inline SVG chart: one line per flow, one point per minute.
function renderThroughput(series) {
  const ns = "http://www.w3.org/2000/svg";
  const w = 6;
  const max = Math.max(1, ...series.flatMap((m) => FLOWS.map((f) => m[f])));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + series.length * w + " 110");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("id", "throughput-chart");
  svg.setAttribute("class", "chart throughput");
  const totals = {};
  for (const f of FLOWS) {
    totals[f] = series.reduce((a, m) => a + m[f], 0);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute(
      "points",
      series.map((m, i) => i * w + w / 2 + "," + (105 - Math.round((m[f] / max) * 100))).join(" "),
    );
    line.setAttribute("class", "flow-" + f);
    line.dataset.flow = f;
    line.dataset.total = String(totals[f]);
    svg.append(line);
  }
  const at = (m) => (m ? when(new Date(m.minute * 1000).toISOString()) : "");
  const span = at(series[0]) + " – " + at(series[series.length - 1]);
  svg.setAttribute(
    "aria-label",
    t("throughput_hour") + " " + span + ": " + FLOWS.map((f) => t("th_" + f) + " " + totals[f]).join(", "),
  );
  $("ops-throughput").replaceChildren(
    svg,
    el(
      "p",
      { class: "small" },
      span + "　",
      ...FLOWS.map((f) => el("span", { class: "legend flow-" + f, text: t("th_" + f) + " " + totals[f] + " " })),
    ),
  );
}

async function businessStats(ev) {
  ev.preventDefault();
  clearMessages();
  const m = /^(\d{4})-(\d{2})$/.exec($("s-month").value);
  if (!m) return;
  const last = new Date(Date.UTC(Number(m[1]), Number(m[2]), 0)).getUTCDate();
  const from = m[0] + "-01";
  const to = m[0] + "-" + String(last).padStart(2, "0");
  try {
    const s = await api("GET", "/v1/ops/business-stats?from=" + from + "&to=" + to);
    renderStats(s.rows, from, last);
  } catch (e) {
    showError(e);
  }
}

function renderStats(rows, from, days) {
  const box = $("ops-business");
  if (!rows.length) {
    box.replaceChildren(el("p", { id: "stats-none", text: t("no_rows") }));
    return;
  }
  const perDay = new Array(days).fill(0);
  for (const r of rows) perDay[Number(r.date.slice(8, 10)) - 1] += r.count;
  const max = Math.max(1, ...perDay);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + days * 12 + " 110");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", t("business_stats") + " " + from.slice(0, 7));
  svg.setAttribute("class", "chart");
  perDay.forEach((n, i) => {
    const h = Math.round((n / max) * 100);
    const bar = document.createElementNS(ns, "rect");
    bar.setAttribute("x", String(i * 12 + 1));
    bar.setAttribute("y", String(100 - h));
    bar.setAttribute("width", "10");
    bar.setAttribute("height", String(h));
    const title = document.createElementNS(ns, "title");
    title.textContent = from.slice(0, 8) + String(i + 1).padStart(2, "0") + ": " + n;
    bar.append(title);
    svg.append(bar);
  });
  box.replaceChildren(
    svg,
    table(
      "business-stats",
      [t("date"), t("business_system"), t("procedure"), t("item"), t("result"), t("count")],
      rows.map((r) => [r.date + " (" + wareki(r.date) + ")", r.business_system, r.procedure, r.item, label("result_", r.result), String(r.count)]),
    ),
  );
}

// ---- views ---------------------------------------------------------------------------------

const VIEWS = ["signin", "home", "audit", "record", "verify", "keys", "ops"];

function show(view) {
  for (const v of VIEWS) $("view-" + v).hidden = v !== view;
  document.body.dataset.view = view;
}

/// Runs `load` now and every `ms` while the view stays open ("live"). A refresh waits while
/// the keyboard focus is on a control it would replace (`data-live` areas), so keyboard users
/// do not lose their place.
function live(load, ms) {
  const run = (always) => {
    const f = document.activeElement;
    if (!always && f && f.closest("[data-live]") && f.matches("button, a, input, select")) return;
    load().catch((e) => {
      showError(e);
    });
  };
  run(true);
  timer = setInterval(() => run(false), ms);
}

function route() {
  if (timer) clearInterval(timer);
  timer = null;
  const signedIn = !!sessionStorage.getItem(TOKEN);
  $("signout").hidden = !signedIn;
  $("nav").hidden = !signedIn;
  for (const a of document.querySelectorAll("#nav a")) a.hidden = !me || a.dataset.role !== me.role;
  showWho();
  if (!signedIn) {
    show("signin");
    if (me && !$("user").value) $("user").value = me.client;
    $("user").focus();
    return;
  }
  const [view, arg] = location.hash.replace(/^#/, "").split("/");
  switch (view) {
    case "audit":
      show("audit");
      break;
    case "record":
      show("record");
      showRecord(arg);
      break;
    case "verify":
      show("verify");
      break;
    case "keys":
      show("keys");
      live(loadKeys, 3000);
      break;
    case "ops":
      show("ops");
      live(loadOps, 2000);
      break;
    default:
      show("home");
  }
  $("main").focus();
}

async function start() {
  applyLanguage();
  try {
    const [w, e] = await Promise.all([api("GET", "/console/whoami"), api("GET", "/console/eras.json")]);
    me = w;
    eras = e.eras;
  } catch (e) {
    showError(e);
  }
  const now = new Date(Date.now() + 9 * 3600 * 1000).toISOString();
  $("s-month").value = now.slice(0, 7);
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("lang").addEventListener("click", () => {
    lang = lang === "ja" ? "en" : "ja";
    localStorage.setItem(LANG, lang);
    applyLanguage();
    route();
  });
  $("audit-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    pages = [];
    search(null);
  });
  $("audit-older").addEventListener("click", () => {
    pages.push(lastPage ? lastPage.before : null);
    const b = $("audit-older").dataset.before;
    lastPage = null;
    search(b).then(() => {
      if (lastPage) lastPage.before = b;
    });
  });
  $("audit-newer").addEventListener("click", () => {
    const b = pages.pop();
    search(b === undefined ? null : b).then(() => {
      if (lastPage) lastPage.before = b;
    });
  });
  $("audit-csv").addEventListener("click", downloadCsv);
  $("audit-export").addEventListener("click", exportPerson);
  $("audit-export-period").addEventListener("click", exportPeriod);
  $("verify-live").addEventListener("click", verifyLive);
  $("consistency-form").addEventListener("submit", checkConsistency);
  $("stats-form").addEventListener("submit", businessStats);
  window.addEventListener("hashchange", () => {
    clearMessages();
    route();
  });
  route();
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", start);
