// Cloud Ingest operator page: plugin status, tracked studies, resend/cancel.
//
// Rules this file keeps (the page is served with CSP "default-src 'self'"):
// - every value from the server goes into the page through textContent or
//   setAttribute, never through innerHTML, so DICOM text stays text;
// - no inline styles or handlers: listeners are attached here;
// - URLs are relative ("../status"), so the page works behind a reverse proxy
//   and reuses the credentials the browser already sends to Orthanc.
'use strict';

(function () {
  const API = '../';
  const PAGE_SIZE = 25;
  const REFRESH_MS = 2000;
  const STATES = ['queued', 'sending', 'sent', 'failed', 'cancelled'];
  const CANCELLABLE = new Set(['queued', 'sending']);

  const view = {
    state: '',  // filter; '' = all
    offset: 0,
    timer: null,
    refreshing: false,
    again: false,        // a refresh was asked for while one was running
    actionEpoch: 0,      // bumped by resend/cancel: older refresh answers are stale
    bannerSource: null,  // 'refresh' errors clear themselves on the next success
    counts: null,        // queue counts from the last status, for "of N"
    can: new Set(),      // what GET me allows: actions stay hidden until it answers
  };

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ HTTP

  class ApiError extends Error {
    constructor(method, path, status, message) {
      super(message);
      this.method = method;
      this.path = path;
      this.status = status;
    }
    describe() {
      const where = this.method + ' ' + API + this.path.split('?')[0];
      return where + (this.status ? ' (HTTP ' + this.status + ')' : '') + ': ' + this.message;
    }
  }

  async function callApi(method, path, body) {
    const init = {
      method: method,
      cache: 'no-store',
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    };
    // The plugin answers a POST of any other type with 415 (a cross-site form cannot send
    // JSON without a CORS preflight), so even a POST without a body declares JSON.
    if (body !== undefined || method === 'POST') {
      init.headers['Content-Type'] = 'application/json';
    }
    if (body !== undefined) {
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (e) {
      throw new ApiError(method, path, 0, 'the server cannot be reached (' + e.message + ')');
    }
    const text = await response.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = null;
      }
    }
    if (!response.ok) {
      let message = data && typeof data.error === 'string' ? data.error
                                                           : response.statusText || 'request failed';
      if (data && typeof data.details === 'string' && data.details) message += ' — ' + data.details;
      if (response.status === 401 || response.status === 403) {
        message = 'not authorised; reload the page and log in to Orthanc again';
      }
      throw new ApiError(method, path, response.status, message);
    }
    return data;
  }

  // ------------------------------------------------------------------ messages

  function showError(error, source) {
    const text = error instanceof ApiError ? error.describe() : String(error && error.message || error);
    $('banner-text').textContent = text;
    $('banner').hidden = false;
    view.bannerSource = source;
  }

  function clearError(source) {
    if (source === undefined || view.bannerSource === source) {
      $('banner').hidden = true;
      $('banner-text').textContent = '';
      view.bannerSource = null;
    }
  }

  let noticeTimer = null;
  function notice(text) {
    $('notice').textContent = text;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { $('notice').textContent = ''; }, 6000);
  }

  // ------------------------------------------------------------------ formatting

  function setText(element, text) {
    const value = text === null || text === undefined ? '' : String(text);
    if (element.textContent !== value) element.textContent = value;
  }

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }

  // Local time "YYYY-MM-DD HH:MM:SS"; the ISO UTC value stays in the title.
  function formatTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
           pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  // DICOM DA "YYYYMMDD" -> "YYYY-MM-DD"; anything else as it is.
  function formatStudyDate(value) {
    const text = value ? String(value) : '';
    return /^\d{8}$/.test(text) ? text.slice(0, 4) + '-' + text.slice(4, 6) + '-' + text.slice(6) : text;
  }

  function formatBytes(value) {
    let n = Number(value) || 0;
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let unit = 0;
    while (n >= 1000 && unit < units.length - 1) {
      n /= 1000;
      unit += 1;
    }
    return (unit === 0 ? String(n) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[unit];
  }

  function formatCount(value) {
    return (Number(value) || 0).toLocaleString();
  }

  // ------------------------------------------------------------------ status

  // "Auto, uploads at a time: auto, round trip 81 ms": what decides how studies go.
  function uploadModeText(status) {
    let text = status.upload_mode || '?';
    if (status.concurrency) {
      text += status.concurrency === 'auto' ? ', uploads at a time: auto'
        : ', ' + status.concurrency + ' uploads at a time';
    }
    const rtt = status.round_trip_ms;
    text += typeof rtt === 'number' ? ', round trip ' + rtt.toFixed(rtt < 10 ? 1 : 0) + ' ms'
      : ', round trip not measured yet';
    return text;
  }

  function renderStatus(status) {
    setText($('status-version'), status.version || '?');
    setText($('status-enabled'), status.enabled ? 'yes' : 'no (CloudIngest.Enable is false)');
    $('status-enabled').dataset.enabled = status.enabled ? 'true' : 'false';
    setText($('status-url'), status.url || '—');
    setText($('status-auto-send'), status.enabled ? (status.auto_send ? 'on' : 'off') : '—');
    setText($('status-upload-mode'), status.enabled ? uploadModeText(status) : '—');

    // Only the token's state is ever shown: the server never sends the token.
    const token = status.token || null;
    const tokenElement = $('status-token');
    if (!token) {
      setText(tokenElement, '—');
      tokenElement.dataset.valid = 'unknown';
    } else if (token.valid) {
      setText(tokenElement, 'valid until ' + formatTime(token.valid_until));
      tokenElement.setAttribute('title', token.valid_until || '');
      tokenElement.dataset.valid = 'true';
    } else {
      let text = 'no valid token';
      if (token.refresh_failures) text += ' (' + token.refresh_failures + ' failed attempts)';
      if (token.last_error) text += ': ' + token.last_error;
      setText(tokenElement, text);
      tokenElement.removeAttribute('title');
      tokenElement.dataset.valid = 'false';
    }

    const database = status.database || null;
    const databaseElement = $('status-database');
    if (!database) {
      setText(databaseElement, '—');
    } else {
      let text = database.kind + (database.reachable ? '' : ': not answering');
      if (database.last_error) text += ' (' + database.last_error + ')';
      setText(databaseElement, text);
      databaseElement.dataset.reachable = database.reachable ? 'true' : 'false';
    }
    // SendWindows hold automatic sends (manual ones go at once).
    const windows = status.send_windows || null;
    setText($('status-windows'), !status.enabled ? '—'
      : !windows ? 'none: automatic sends may start any time'
        : windows.open ? 'open now'
          : 'closed: automatic sends wait until ' + formatTime(windows.next_opening));
    $('status-windows').dataset.open = !windows || windows.open ? 'true' : 'false';
    renderNodes(status.nodes || [], status.node);
    // POST /queue/pause holds every new send until resumed.
    setText($('status-paused'), !status.enabled ? '—' : status.paused ? 'paused' : 'running');
    $('status-paused').dataset.paused = status.paused ? 'true' : 'false';
    const toggle = $('queue-toggle');
    toggle.hidden = !status.enabled;
    toggle.dataset.action = status.paused ? 'resume' : 'pause';
    setText(toggle, status.paused ? 'Resume queue' : 'Pause queue');

    const queue = status.queue || {};
    view.counts = status.enabled ? queue : null;
    for (const item of $('queue-counts').querySelectorAll('li[data-state]')) {
      setText(item.querySelector('.count'), formatCount(queue[item.dataset.state]));
    }

    const totals = status.totals || {};
    setText($('total-studies'), formatCount(totals.studies_sent));
    setText($('total-instances'), formatCount(totals.instances_sent));
    setText($('total-bytes'), formatBytes(totals.bytes_sent));
    setText($('total-failures'), formatCount(totals.failures));
    setText($('total-last-success'), totals.last_success ? formatTime(totals.last_success) : 'never');
  }

  // One line per node of the cluster (just this one with SQLite): whether it
  // renews its claims, its last heartbeat and how many studies it is sending.
  function renderNodes(nodes, self) {
    const list = $('nodes');
    list.replaceChildren();
    for (const node of nodes) {
      const item = document.createElement('li');
      item.dataset.node = node.name;
      item.dataset.alive = node.alive ? 'true' : 'false';
      const sending = (node.sending || []).length;
      let text = node.name + (node.name === self ? ' (this node)' : '') + ': ';
      text += node.alive ? 'alive' : 'silent since ' + formatTime(node.last_heartbeat);
      text += ', sending ' + sending + (sending === 1 ? ' study' : ' studies');
      item.textContent = text;
      list.appendChild(item);
    }
  }

  // ------------------------------------------------------------------ studies table

  const COLUMNS = ['patient-name', 'patient-id', 'study-date', 'description', 'order-id', 'state',
                   'progress', 'attempts', 'last-error', 'updated', 'actions'];

  function studyLabel(study) {
    const parts = [study.patient_name, study.study_description, formatStudyDate(study.study_date)];
    const text = parts.filter((p) => p).join(', ');
    return text || study.orthanc_id;
  }

  function createRow(id) {
    const row = document.createElement('tr');
    row.dataset.orthancId = id;
    for (const name of COLUMNS) {
      const cell = document.createElement('td');
      cell.className = name;
      row.appendChild(cell);
    }
    const stateCell = row.querySelector('td.state');
    const badge = document.createElement('span');
    badge.className = 'badge';
    stateCell.appendChild(badge);

    const progressCell = row.querySelector('td.progress');
    const bar = document.createElement('progress');
    bar.className = 'bar';
    const count = document.createElement('span');
    count.className = 'progress-text';
    progressCell.append(bar, count);

    const updated = row.querySelector('td.updated');
    const updatedDate = document.createElement('span');
    updatedDate.className = 'date';
    const updatedTime = document.createElement('span');
    updatedTime.className = 'time';
    updated.append(updatedDate, ' ', updatedTime);

    const actions = row.querySelector('td.actions');
    const resend = document.createElement('button');
    resend.type = 'button';
    resend.className = 'resend';
    resend.textContent = 'Resend';
    resend.addEventListener('click', () => act('send', id, resend));
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'cancel';
    cancel.textContent = 'Cancel';
    cancel.addEventListener('click', () => act('cancel', id, cancel));
    // Shown by tools.js, which listens for clicks on the table.
    const preview = document.createElement('button');
    preview.type = 'button';
    preview.className = 'preview';
    preview.textContent = 'Preview';
    const receipt = document.createElement('a');
    receipt.className = 'receipt';
    receipt.textContent = 'Receipt';
    receipt.setAttribute('href', API + 'studies/' + encodeURIComponent(id) + '/receipt');
    receipt.setAttribute('target', '_blank');
    receipt.setAttribute('rel', 'noopener');
    actions.append(resend, cancel, preview, receipt);
    return row;
  }

  function cell(row, name) {
    return row.querySelector('td.' + name);
  }

  function updateRow(row, study) {
    const state = STATES.includes(study.state) ? study.state : 'unknown';
    row.dataset.state = state;
    setText(cell(row, 'patient-name'), study.patient_name);
    setText(cell(row, 'patient-id'), study.patient_id);
    setText(cell(row, 'study-date'), formatStudyDate(study.study_date));
    setText(cell(row, 'description'), study.study_description);
    cell(row, 'description').setAttribute('title', study.study_description || '');
    setText(cell(row, 'order-id'), study.order_id || '—');
    cell(row, 'order-id').setAttribute('title', study.order_id || '');
    cell(row, 'study-date').setAttribute('title', study.study_instance_uid
      ? 'StudyInstanceUID ' + study.study_instance_uid : '');

    const badge = cell(row, 'state').querySelector('.badge');
    setText(badge, study.state);
    badge.className = 'badge state-' + state;

    const sent = Number(study.instances_sent) || 0;
    const total = Number(study.instances_total) || 0;
    const bar = cell(row, 'progress').querySelector('progress');
    bar.max = Math.max(total, 1);
    bar.value = Math.min(sent, bar.max);
    bar.setAttribute('aria-label', sent + ' of ' + total + ' instances sent');
    setText(cell(row, 'progress').querySelector('.progress-text'), sent + '/' + total);
    cell(row, 'progress').setAttribute('title', formatBytes(study.bytes_sent) + ' sent');

    setText(cell(row, 'attempts'), study.attempts);
    setText(cell(row, 'last-error'), study.last_error || '');
    cell(row, 'last-error').setAttribute('title', study.last_error || '');

    const updated = cell(row, 'updated');
    const [day, time] = formatTime(study.updated_at).split(' ');
    setText(updated.querySelector('.date'), day);
    setText(updated.querySelector('.time'), time);
    updated.setAttribute('title', study.updated_at ? study.updated_at + ' (UTC)' : '');

    const label = studyLabel(study);
    const resend = row.querySelector('button.resend');
    const cancel = row.querySelector('button.cancel');
    resend.setAttribute('aria-label', 'Resend study: ' + label);
    cancel.setAttribute('aria-label', 'Cancel sending study: ' + label);
    resend.hidden = !view.can.has('send');
    cancel.hidden = !view.can.has('send') || !CANCELLABLE.has(state);
    row.querySelector('button.preview').setAttribute('aria-label', 'Preview a send of study: ' + label);
    row.dataset.label = label;
    const receipt = row.querySelector('a.receipt');
    receipt.setAttribute('aria-label', 'Delivery receipt of study: ' + label);
    receipt.hidden = state !== 'sent';
  }

  // Rows are kept and updated in place (keyed by Orthanc id) so that the
  // 2-second refresh neither flickers nor takes the keyboard focus away.
  function renderStudies(studies) {
    const body = $('studies-body');
    const existing = new Map();
    for (const row of body.querySelectorAll('tr[data-orthanc-id]')) {
      existing.set(row.dataset.orthancId, row);
    }
    const wanted = [];
    for (const study of studies) {
      if (!study || typeof study.orthanc_id !== 'string') continue;
      let row = existing.get(study.orthanc_id);
      if (row) {
        existing.delete(study.orthanc_id);
      } else {
        row = createRow(study.orthanc_id);
      }
      updateRow(row, study);
      wanted.push(row);
    }
    for (const row of existing.values()) row.remove();
    wanted.forEach((row, index) => {
      if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
    });

    const empty = $('studies-empty');
    empty.hidden = wanted.length > 0;
    setText(empty, view.state ? 'No study is in state "' + view.state + '".'
                              : 'No study is tracked yet.');
  }

  // A single study's new state, from a send/cancel answer, before the next refresh.
  function renderOne(study) {
    if (!study || typeof study.orthanc_id !== 'string') return;
    for (const row of $('studies-body').querySelectorAll('tr[data-orthanc-id]')) {
      if (row.dataset.orthancId === study.orthanc_id) {
        updateRow(row, study);
        if (view.state && view.state !== study.state) {
          row.classList.add('leaving');  // no longer matches the filter; gone on refresh
        }
      }
    }
  }

  // Studies a POST just queued (bulk resend), shown before the next refresh;
  // a refresh already under way would bring older data, so it is made stale.
  function renderQueued(studies) {
    view.actionEpoch += 1;
    for (const study of studies) renderOne(study);
  }

  function renderPager(shown, hasMore) {
    $('prev-page').disabled = view.offset === 0;
    $('next-page').disabled = !hasMore;
    let total = null;
    if (view.counts) {
      total = view.state ? Number(view.counts[view.state]) || 0
                         : STATES.reduce((sum, s) => sum + (Number(view.counts[s]) || 0), 0);
    }
    let text;
    if (shown === 0) {
      text = view.offset === 0 ? '' : 'No more studies';
    } else {
      text = 'Studies ' + (view.offset + 1) + '–' + (view.offset + shown);
      if (total !== null && total >= view.offset + shown) text += ' of ' + total;
    }
    setText($('page-info'), text);
  }

  // ------------------------------------------------------------------ refresh loop

  function studiesQuery() {
    const query = new URLSearchParams();
    if (view.state) query.set('state', view.state);
    query.set('limit', String(PAGE_SIZE + 1));  // one more than shown: is there a next page?
    query.set('offset', String(view.offset));
    return 'studies?' + query.toString();
  }

  async function refresh() {
    if (view.refreshing) {
      view.again = true;
      return;
    }
    view.refreshing = true;
    clearTimeout(view.timer);
    view.timer = null;
    const epoch = view.actionEpoch;
    const filter = view.state;
    const offset = view.offset;
    try {
      const [status, list] = await Promise.allSettled([
        callApi('GET', 'status'),
        callApi('GET', studiesQuery()),
      ]);
      // Answers that predate a click or a filter change would show old data.
      if (epoch !== view.actionEpoch || filter !== view.state || offset !== view.offset) {
        view.again = true;
        return;
      }
      if (status.status === 'fulfilled' && status.value) renderStatus(status.value);
      const disabled = status.status === 'fulfilled' && status.value && !status.value.enabled;
      if (disabled) {
        renderStudies([]);
        renderPager(0, false);
        setText($('studies-empty'), 'The plugin is disabled: no study is being sent.');
      } else if (list.status === 'fulfilled') {
        const studies = (list.value && Array.isArray(list.value.studies)) ? list.value.studies : [];
        if (studies.length === 0 && view.offset > 0) {
          // The page emptied (studies moved on): step back instead of showing nothing.
          view.offset = Math.max(0, view.offset - PAGE_SIZE);
          saveLocation();
          view.again = true;
          return;
        }
        renderStudies(studies.slice(0, PAGE_SIZE));
        renderPager(Math.min(studies.length, PAGE_SIZE), studies.length > PAGE_SIZE);
      }
      const failure = status.status === 'rejected' ? status.reason
                    : (!disabled && list.status === 'rejected') ? list.reason : null;
      if (failure) {
        showError(failure, 'refresh');
      } else {
        clearError('refresh');
        setText($('last-refresh'), 'Updated ' + formatTime(new Date().toISOString()));
      }
    } finally {
      view.refreshing = false;
      if (view.again) {
        view.again = false;
        refresh();
      } else {
        schedule();
      }
    }
  }

  function schedule() {
    clearTimeout(view.timer);
    view.timer = null;
    if (document.visibilityState === 'visible') {
      view.timer = setTimeout(refresh, REFRESH_MS);
    } else {
      setText($('last-refresh'), 'Paused while the tab is hidden');
    }
  }

  // ------------------------------------------------------------------ actions

  async function act(action, id, button) {
    button.disabled = true;
    view.actionEpoch += 1;
    try {
      const study = await callApi('POST', 'studies/' + encodeURIComponent(id) + '/' + action, {});
      view.actionEpoch += 1;  // a refresh that ran during the POST is stale too
      renderOne(study);
      clearError('action');
      notice(action === 'send' ? 'Study queued for sending: ' + studyLabel(study || { orthanc_id: id })
                               : 'Sending cancelled: ' + studyLabel(study || { orthanc_id: id }));
    } catch (error) {
      showError(error, 'action');
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  async function toggleQueue(button) {
    const action = button.dataset.action === 'resume' ? 'resume' : 'pause';
    button.disabled = true;
    try {
      await callApi('POST', 'queue/' + action, {});
      clearError('action');
      notice(action === 'pause' ? 'Queue paused: no new send starts' : 'Queue resumed');
    } catch (error) {
      showError(error, 'action');
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  // ------------------------------------------------------------------ filter, paging, location

  // "#state=failed&offset=25": a reload or a shared link keeps the view.
  function loadLocation() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ''));
    const state = params.get('state') || '';
    view.state = STATES.includes(state) ? state : '';
    const offset = Number(params.get('offset'));
    view.offset = Number.isInteger(offset) && offset > 0 ? offset : 0;
    $('state-filter').value = view.state;
  }

  function saveLocation() {
    const params = new URLSearchParams();
    if (view.state) params.set('state', view.state);
    if (view.offset) params.set('offset', String(view.offset));
    const hash = params.toString();
    history.replaceState(null, '', hash ? '#' + hash : location.pathname + location.search);
  }

  function changeView(state, offset) {
    view.state = state;
    view.offset = Math.max(0, offset);
    saveLocation();
    refresh();
  }

  // Who the user is and what they may do; the page offers only that.
  async function loadRole() {
    try {
      const me = await callApi('GET', 'me');
      view.can = new Set(Array.isArray(me.can) ? me.can : []);
      document.body.dataset.role = typeof me.role === 'string' ? me.role : '';
    } catch (error) {
      // Refused: nothing to offer. Otherwise the role is unknown: offer the
      // actions and let the plugin decide.
      const refused = error instanceof ApiError && error.status === 403;
      view.can = new Set(refused ? [] : ['view', 'send']);
      document.body.dataset.role = refused ? 'none' : '';
    }
  }

  // What tools.js (preview, bulk resend) shares with this file.
  window.CloudIngestPage = {
    callApi, setText, showError, clearError, notice, formatTime, formatBytes, formatCount,
    studyLabel, refresh, renderQueued,
    can: (what) => view.can.has(what),
    roleLoaded: null,  // a promise, set by start()
  };

  async function start() {
    loadLocation();
    window.CloudIngestPage.roleLoaded = loadRole();
    await window.CloudIngestPage.roleLoaded;
    $('state-filter').addEventListener('change', (event) => changeView(event.target.value, 0));
    $('prev-page').addEventListener('click', () => changeView(view.state, view.offset - PAGE_SIZE));
    $('next-page').addEventListener('click', () => changeView(view.state, view.offset + PAGE_SIZE));
    $('banner-close').addEventListener('click', () => clearError());
    $('queue-toggle').addEventListener('click', (event) => toggleQueue(event.currentTarget));
    window.addEventListener('hashchange', () => {
      loadLocation();
      refresh();
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        refresh();
      } else {
        schedule();  // stops the timer
      }
    });
    refresh();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
