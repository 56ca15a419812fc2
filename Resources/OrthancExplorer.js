// Cloud Ingest: a "Send to cloud" button and a status line on the study page
// of Orthanc Explorer (jQuery 1.7 + jQuery Mobile 1.x). Appended by Orthanc to
// /plugins/explorer.js, so it runs inside the explorer's own page: it must
// never throw, and it touches nothing but its own two list items.
// The explorer lives at /app/explorer.html: the plugin's routes are at
// "../cloud-ingest/...". Server text is inserted with .text() only.
(function () {
  'use strict';

  if (typeof jQuery === 'undefined' || !jQuery.fn) {
    return;
  }
  var $ = jQuery;
  var BASE = '../cloud-ingest/';
  var TERMINAL = { sent: true, failed: true, cancelled: true };
  var POLL_MS = 2000;
  var POLL_MAX = 90;  // follows a send for at most 3 minutes

  var shownStudy = null;  // the study whose page is on screen, or null
  var can = null;  // what GET me allows ({view, send}), null until it answered
  var pollTimer = null;
  var pollsLeft = 0;
  var sequence = 0;  // answers to older requests are dropped

  function StudyIdFromPage() {
    var data = $.mobile && $.mobile.pageData;
    var id = data && data.uuid;
    return (typeof id === 'string' && /^[0-9a-f-]{1,64}$/.test(id)) ? id : null;
  }

  function SetStatus(text, state) {
    var line = $('#cloud-ingest-status');
    line.text(text);
    line.attr('data-state', state || '');
  }

  function ErrorText(xhr) {
    var text = 'HTTP ' + (xhr && xhr.status ? xhr.status : 'error');
    try {
      var body = JSON.parse(xhr.responseText);
      if (body && typeof body.error === 'string') {
        text += ': ' + body.error;
      }
    } catch (e) {
      // not JSON: the status code says enough
    }
    return text;
  }

  function Describe(study) {
    var state = typeof study.state === 'string' ? study.state : 'unknown';
    var text = 'Cloud: ' + state;
    var total = Number(study.instances_total) || 0;
    if (total > 0) {
      text += ' (' + (Number(study.instances_sent) || 0) + '/' + total + ' instances)';
    }
    if (study.last_error && state !== 'sent') {
      text += ' \u2014 ' + study.last_error;
    }
    if (study.order_id) {
      text += ', order ' + study.order_id;
    }
    if (typeof study.updated_at === 'string' && study.updated_at) {
      text += ', updated ' + study.updated_at.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC');
    }
    return text;
  }

  function StopPolling() {
    if (pollTimer !== null) {
      clearTimeout(pollTimer);
      pollTimer = null;
    }
    pollsLeft = 0;
  }

  // GET ../cloud-ingest/studies/<id>; follows the study while it is in flight
  // if `follow` is set (after a click), within POLL_MAX polls.
  function RefreshStatus(id, follow) {
    var mine = ++sequence;
    if (pollTimer !== null) {
      clearTimeout(pollTimer);
      pollTimer = null;
    }
    $.ajax({
      url: BASE + 'studies/' + encodeURIComponent(id),
      type: 'GET',
      dataType: 'json',
      cache: false,
      success: function (study) {
        if (mine !== sequence || id !== shownStudy) {
          return;
        }
        if (!study || typeof study !== 'object') {
          SetStatus('Cloud: status unavailable (unexpected answer)', 'error');
          return;
        }
        SetStatus(Describe(study), study.state);
        if (follow && !TERMINAL[study.state] && pollsLeft > 0) {
          pollsLeft -= 1;
          pollTimer = setTimeout(function () {
            pollTimer = null;
            if (id === shownStudy) {
              RefreshStatus(id, true);
            }
          }, POLL_MS);
        }
      },
      error: function (xhr) {
        if (mine !== sequence || id !== shownStudy) {
          return;
        }
        if (xhr && xhr.status === 404) {
          SetStatus('Cloud: not sent yet', 'none');
        } else {
          SetStatus('Cloud: status unavailable (' + ErrorText(xhr) + ')', 'error');
        }
      }
    });
  }

  function Send(id) {
    var button = $('#cloud-ingest-send');
    if (button.attr('data-busy') === 'true') {
      return;
    }
    button.attr('data-busy', 'true');
    SetStatus('Cloud: asking the plugin to send this study\u2026', 'pending');
    $.ajax({
      url: BASE + 'studies/' + encodeURIComponent(id) + '/send',
      type: 'POST',
      data: '{}',
      contentType: 'application/json',
      dataType: 'json',
      success: function (study) {
        if (id !== shownStudy) {
          return;
        }
        if (study && typeof study === 'object') {
          SetStatus(Describe(study), study.state);
        }
        pollsLeft = POLL_MAX;
        RefreshStatus(id, true);
      },
      error: function (xhr) {
        if (id === shownStudy) {
          ++sequence;  // an older status answer must not hide this error
          SetStatus('Cloud: sending failed to start (' + ErrorText(xhr) + ')', 'error');
        }
      },
      complete: function () {
        button.removeAttr('data-busy');
      }
    });
  }

  // Built once, when jQuery Mobile creates the study page; kept across studies.
  function AddControls() {
    if ($('#cloud-ingest-send').length > 0) {
      return;
    }
    var list = $('#study-delete').closest('ul');
    if (list.length === 0) {
      return;  // another explorer layout: stay out of the way
    }
    var sendItem = $('<li>').attr('data-icon', 'forward').attr('id', 'cloud-ingest-send-item');
    var link = $('<a>').attr('href', '#').attr('id', 'cloud-ingest-send').attr('role', 'button')
      .text('Send to cloud');
    sendItem.append(link);
    var statusItem = $('<li>').attr('id', 'cloud-ingest-status-item').css('white-space', 'normal');
    var status = $('<span>').attr('id', 'cloud-ingest-status').attr('role', 'status')
      .attr('aria-live', 'polite').css({ 'font-weight': 'normal', 'font-size': '0.9em' })
      .text('Cloud: \u2026');
    statusItem.append(status);
    list.append(sendItem).append(statusItem);
    if (list.hasClass('ui-listview')) {
      list.listview('refresh');  // the page was enhanced already: style the new items too
    }

    link.click(function (event) {
      event.preventDefault();
      try {
        if (shownStudy !== null) {
          Send(shownStudy);
        }
      } catch (e) {
        SetStatus('Cloud: ' + e.message, 'error');
      }
    });
  }

  // The controls follow the user's role: no status line without "view", no
  // button without "send" (a refused request would only be audited).
  function ApplyRole() {
    $('#cloud-ingest-send-item').toggle(!!(can && can.send));
    $('#cloud-ingest-status-item').toggle(!!(can && can.view));
  }

  function LoadRole(then) {
    if (can !== null) {
      then();
      return;
    }
    $.ajax({ url: BASE + 'me', dataType: 'json', cache: false })
      .done(function (me) {
        var list = (me && me.can) || [];
        can = { view: list.indexOf('view') >= 0, send: list.indexOf('send') >= 0 };
      })
      .fail(function (xhr) {
        // Refused: the user may do nothing here. Any other failure says nothing
        // about the role: offer both, the plugin still decides.
        var refused = xhr && xhr.status === 403;
        can = { view: !refused, send: !refused };
      })
      .always(function () {
        try {
          ApplyRole();
          then();
        } catch (e) {
          // never break the explorer
        }
      });
  }

  function OnShow() {
    try {
      AddControls();
      ApplyRole();
      StopPolling();
      shownStudy = StudyIdFromPage();
      if (shownStudy === null) {
        SetStatus('Cloud: \u2026', '');
        return;
      }
      SetStatus('Cloud: loading\u2026', 'pending');
      var id = shownStudy;
      LoadRole(function () {
        if (can.view && shownStudy === id) {
          RefreshStatus(id, false);
        }
      });
    } catch (e) {
      // never break the explorer
    }
  }

  function OnHide() {
    shownStudy = null;
    StopPolling();
  }

  function Bind(event, handler) {
    var page = $('#study');
    if (typeof page.live === 'function') {
      page.live(event, handler);  // jQuery 1.7, as Orthanc Explorer ships it
    } else {
      $(document).on(event, '#study', handler);
    }
  }

  try {
    Bind('pagebeforecreate', function () {
      try {
        AddControls();
      } catch (e) {
        // never break the explorer
      }
    });
    Bind('pagebeforeshow', OnShow);
    Bind('pagehide', OnHide);
    // The explorer moves between studies through the hash without showing the page again.
    $(window).bind('hashchange', function () {
      setTimeout(function () {
        if (shownStudy !== null && StudyIdFromPage() !== shownStudy) {
          OnShow();
        }
      }, 0);
    });
  } catch (e) {
    // never break the explorer
  }
})();
