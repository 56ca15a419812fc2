// Cloud Ingest operator page, part two: a study's send preview and the bulk
// resend form. The same rules as app.js: server values go in as text only,
// no inline handlers, relative URLs. It uses the helpers app.js shares
// (window.CloudIngestPage), so it is loaded after it.
(function () {
  const page = window.CloudIngestPage;
  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ preview

  // "original → pseudonym" when the study would be de-identified, else the value.
  function pseudonymText(pair, plain) {
    if (pair && typeof pair === 'object') {
      return (pair.original || '—') + ' → ' + (pair.pseudonym || '—');
    }
    return plain || '—';
  }

  function renderPreview(label, preview) {
    page.setText($('preview-study'), label);
    const blocked = Array.isArray(preview.blocked_by) ? preview.blocked_by : [];
    page.setText($('preview-would-send'), preview.would_send ? 'yes' : 'no');
    $('preview-would-send').dataset.wouldSend = preview.would_send ? 'true' : 'false';
    let mode = preview.mode || '?';
    if (preview.connections) mode += ', ' + preview.connections + ' uploads at a time';
    page.setText($('preview-mode'), mode);
    $('preview-mode').setAttribute('title', preview.mode_reason || '');
    page.setText($('preview-content'), page.formatCount(preview.series) + ' series, ' +
      page.formatCount(preview.instances) + ' instances, ' + page.formatBytes(preview.bytes));

    const order = preview.order_metadata && typeof preview.order_metadata === 'object'
      ? preview.order_metadata : null;
    const deidentify = preview.deidentify || null;
    const studyUid = $('preview-study-uid');
    page.setText(studyUid, pseudonymText(deidentify && deidentify.study_instance_uid,
                                         order && order.study_instance_uid));
    studyUid.dataset.deidentified = deidentify ? 'true' : 'false';
    page.setText($('preview-patient-id'), pseudonymText(deidentify && deidentify.patient_id,
                                                        order && order.patient_id));

    const list = $('preview-blocked');
    list.replaceChildren();
    for (const reason of blocked) {
      const item = document.createElement('li');
      item.textContent = reason;
      list.appendChild(item);
    }

    const errorLine = $('preview-order-error');
    errorLine.hidden = !preview.order_error;
    page.setText(errorLine, preview.order_error ? 'No order: ' + preview.order_error : '');
    const body = $('preview-order').querySelector('tbody');
    body.replaceChildren();
    for (const [key, value] of Object.entries(order || {})) {
      const row = document.createElement('tr');
      const name = document.createElement('td');
      name.className = 'mono';
      name.textContent = key;
      const text = document.createElement('td');
      text.textContent = typeof value === 'string' ? value : JSON.stringify(value);
      row.append(name, text);
      body.appendChild(row);
    }
    $('preview').hidden = false;
  }

  async function showPreview(row, button) {
    button.disabled = true;
    try {
      const id = row.dataset.orthancId;
      const preview = await page.callApi('GET', 'studies/' + encodeURIComponent(id) + '/preview');
      renderPreview(row.dataset.label || id, preview || {});
      page.clearError('action');
      $('preview-close').focus();
    } catch (error) {
      page.showError(error, 'action');
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------ bulk resend

  function bulkQuery() {
    const query = { limit: Number($('bulk-limit').value) || 100 };
    if ($('bulk-state').value) query.state = $('bulk-state').value;
    const modality = $('bulk-modality').value.trim();
    if (modality) query.modality = modality.toUpperCase();
    // datetime-local is the browser's local time; the plugin takes ISO 8601 in UTC.
    const since = $('bulk-since').value;
    if (since) query.since = new Date(since).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return query;
  }

  async function bulkResend(event) {
    event.preventDefault();
    const button = $('bulk-submit');
    button.disabled = true;
    try {
      const answer = await page.callApi('POST', 'studies/send', bulkQuery());
      const studies = answer && Array.isArray(answer.studies) ? answer.studies : [];
      const queued = answer && Number.isInteger(answer.queued) ? answer.queued : studies.length;
      let text = queued === 1 ? '1 study queued for sending' : queued + ' studies queued for sending';
      if (queued === 1 && studies[0]) text += ': ' + page.studyLabel(studies[0]);
      page.renderQueued(studies);
      page.notice(text);
      page.clearError('action');
    } catch (error) {
      page.showError(error, 'action');
    } finally {
      button.disabled = false;
      page.refresh();
    }
  }

  async function start() {
    $('studies-body').addEventListener('click', (event) => {
      const button = event.target.closest('button.preview');
      if (button) showPreview(button.closest('tr'), button);
    });
    $('preview-close').addEventListener('click', () => { $('preview').hidden = true; });
    $('bulk-form').addEventListener('submit', bulkResend);
    // app.js sets roleLoaded as it starts, which a deferred script does before this one.
    await page.roleLoaded;
    $('bulk').hidden = !page.can('send');
  }

  start();
})();
