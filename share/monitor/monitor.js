/*
 * celeriac monitor: polls /monitor/api/* and draws the page.  No
 * library: the DOM is built with textContent (never innerHTML with
 * data), and the graphs are drawn on <canvas>.
 */
'use strict';

(function () {
	var REFRESH_MS = 3000;
	var HOUR = 3600;
	var COLORS = ['#2563eb', '#16a34a', '#d97706', '#9333ea', '#0891b2',
	    '#db2777', '#65a30d', '#475569'];
	var TERMINAL = { succeeded: 1, failed: 1, revoked: 1 };

	var state = {
		overview: null,
		view: 'recent',
		search: '',
		samples: [],
		queues: [],
		interval: 5,
		lastT: 0,
		live: true,
		token: '',
		detail: null,
		timer: null
	};

	try {
		state.token = window.sessionStorage.getItem('celeriac.token') || '';
	} catch (e) {
		state.token = '';
	}

	function $(id) {
		return document.getElementById(id);
	}

	/* el('td', {class: 'num'}, 'text', childNode, ...) */
	function el(tag, attrs) {
		var n = document.createElement(tag), i, c, k;
		for (k in attrs || {}) {
			if (k === 'class')
				n.className = attrs[k];
			else if (k === 'title')
				n.title = attrs[k];
			else if (k.indexOf('on') === 0)
				n.addEventListener(k.slice(2), attrs[k]);
			else
				n.setAttribute(k, attrs[k]);
		}
		for (i = 2; i < arguments.length; i++) {
			c = arguments[i];
			if (c === null || c === undefined)
				continue;
			n.appendChild(typeof c === 'object' ? c :
			    document.createTextNode(String(c)));
		}
		return n;
	}

	function clear(n) {
		while (n.firstChild)
			n.removeChild(n.firstChild);
		return n;
	}

	function badge(s) {
		return el('span', { class: 'badge ' + (s || '') }, s || '?');
	}

	function fmtNum(n) {
		if (n === null || n === undefined)
			return '–';
		return Number(n).toLocaleString('en-US');
	}

	function fmtSecs(s) {
		if (s === null || s === undefined || isNaN(s))
			return '–';
		s = Number(s);
		if (s < 0.001)
			return s === 0 ? '0 s' : '<1 ms';
		if (s < 1)
			return Math.round(s * 1000) + ' ms';
		if (s < 60)
			return (s < 10 ? s.toFixed(2) : s.toFixed(1)) + ' s';
		if (s < 3600)
			return Math.floor(s / 60) + ' m ' + Math.round(s % 60) + ' s';
		if (s < 86400)
			return Math.floor(s / 3600) + ' h ' +
			    Math.round((s % 3600) / 60) + ' m';
		return Math.floor(s / 86400) + ' d ' +
		    Math.round((s % 86400) / 3600) + ' h';
	}

	function fmtBytes(b) {
		if (!b)
			return '–';
		if (b < 1024 * 1024)
			return (b / 1024).toFixed(0) + ' KB';
		return (b / 1048576).toFixed(1) + ' MB';
	}

	function fmtTime(v) {
		var d;
		if (v === null || v === undefined || v === '')
			return '–';
		d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
		if (isNaN(d.getTime()))
			return String(v);
		return d.toLocaleTimeString('en-GB');
	}

	function fmtDateTime(v) {
		var d;
		if (!v)
			return '–';
		d = new Date(v);
		if (isNaN(d.getTime()))
			return String(v);
		return d.toLocaleDateString('en-CA') + ' ' +
		    d.toLocaleTimeString('en-GB');
	}

	function shortId(id) {
		return id ? String(id).slice(0, 8) : '';
	}

	function toast(msg, bad) {
		var t = $('toast');
		t.textContent = msg;
		t.className = 'toast' + (bad ? ' bad' : '');
		clearTimeout(toast.timer);
		toast.timer = setTimeout(function () {
			t.className = 'toast hidden';
		}, 3500);
	}

	function api(path, opts) {
		var o = opts || {}, headers = {};
		if (state.token)
			headers.Authorization = 'Bearer ' + state.token;
		return fetch(path, {
			method: o.method || 'GET',
			headers: headers,
			cache: 'no-store'
		}).then(function (r) {
			return r.json().then(function (body) {
				return { ok: r.ok, status: r.status, body: body };
			}, function () {
				return { ok: false, status: r.status, body: {} };
			});
		});
	}

	/* ---- summary, workers, queues, statistics ---- */

	function tile(label, value, sub, cls) {
		return el('div', { class: 'tile' + (cls ? ' ' + cls : '') },
		    el('div', { class: 'label' }, label),
		    el('div', { class: 'value' }, value,
		    sub ? el('small', null, ' ' + sub) : null));
	}

	function lastMinuteRate() {
		var s = state.samples, a, b, i;
		if (s.length < 2)
			return null;
		b = s[s.length - 1];
		for (i = s.length - 2; i > 0 && b.t - s[i].t < 60; i--)
			;
		a = s[i];
		if (b.t <= a.t)
			return null;
		return (b.succeeded + b.failed - a.succeeded - a.failed) /
		    (b.t - a.t) * 60;
	}

	function renderTiles(o) {
		var live = 0, total = 0, busy = 0, waiting = 0, known = false,
		    t = o.totals, done = t.succeeded + t.failed, rate, ratio;
		o.queues.forEach(function (q) {
			live += q.busy + q.idle;
			total += q.concurrency;
			busy += q.busy;
			if (q.messages !== null) {
				waiting += q.messages;
				known = true;
			}
		});
		rate = lastMinuteRate();
		ratio = done ? t.failed / done * 100 : 0;
		var tiles = clear($('tiles'));
		tiles.appendChild(tile('Workers live', live, '/ ' + total,
		    live < total ? 'bad' : 'good'));
		tiles.appendChild(tile('Busy', busy));
		tiles.appendChild(tile('Waiting', known ? fmtNum(waiting) : '–'));
		tiles.appendChild(tile('Throughput', rate === null ? '–' :
		    rate.toFixed(rate < 10 ? 1 : 0), '/ min'));
		tiles.appendChild(tile('Succeeded', fmtNum(t.succeeded)));
		tiles.appendChild(tile('Failed', fmtNum(t.failed), null,
		    t.failed ? 'bad' : null));
		tiles.appendChild(tile('Failure ratio', ratio.toFixed(1), '%',
		    ratio > 10 ? 'bad' : null));
		tiles.appendChild(tile('Avg duration', fmtSecs(t.avg_seconds)));
	}

	function renderTop(o) {
		$('host').textContent = o.host + ' · celeriac ' + o.version +
		    ' · master pid ' + o.master_pid;
		$('uptime').textContent = 'up ' + fmtSecs(o.uptime_seconds);
		$('pill-broker').className = 'pill ' + (o.broker === 'ok' ?
		    'ok' : 'bad');
		$('pill-broker').textContent = 'broker ' + o.broker;
		$('pill-db').className = 'pill ' + (o.database ? 'ok' : 'off');
		$('pill-db').textContent = o.database ? 'database' :
		    'no database';
		$('btn-token').classList.toggle('hidden', !o.auth);
		$('btn-token').textContent = state.token ? 'Lock actions' :
		    'Unlock actions';
	}

	function renderWorkers(o) {
		var box = clear($('workers')), byQueue = {}, order = [], live = 0;
		o.workers.forEach(function (w) {
			if (!byQueue[w.queue]) {
				byQueue[w.queue] = [];
				order.push(w.queue);
			}
			byQueue[w.queue].push(w);
			if (w.state === 'idle' || w.state === 'busy')
				live++;
		});
		$('workers-count').textContent = live + ' of ' +
		    o.workers.length + ' live';
		if (!order.length)
			box.appendChild(el('div', { class: 'empty' },
			    'No worker runs on this host.'));
		order.forEach(function (name) {
			var q = null, g;
			o.queues.forEach(function (x) {
				if (x.name === name)
					q = x;
			});
			g = el('div', { class: 'queue-group' },
			    el('div', { class: 'queue-title' }, name,
			    el('span', { class: 'muted' }, byQueue[name].length +
			    ' worker' + (byQueue[name].length > 1 ? 's' : '') +
			    (q ? ' · priority ' + q.priority : ''))));
			byQueue[name].forEach(function (w) {
				var cur;
				if (w.task_id)
					cur = el('span', { class: 'cur' },
					    el('a', { title: w.task_id,
					    onclick: function () {
						openDetail(w.task_id);
					    } }, w.task || w.task_id),
					    ' · ' + fmtSecs(w.busy_seconds));
				else
					cur = el('span', { class: 'cur muted' },
					    w.state === 'idle' ? 'waiting for work' :
					    '');
				g.appendChild(el('div', { class: 'worker' },
				    el('span', { class: 'idx' }, '#' + w.index),
				    el('span', { class: 'mono' }, w.pid > 0 ?
				    String(w.pid) : '–'),
				    badge(w.state), cur,
				    el('span', { class: 'counts', title:
				    'succeeded / failed / restarts / memory' },
				    '✓ ' + fmtNum(w.succeeded) + '  ✗ ' +
				    fmtNum(w.failed) + '  ↻ ' + w.restarts +
				    '  ' + fmtBytes(w.rss))));
			});
			box.appendChild(g);
		});
		var procs = clear($('procs'));
		o.processes.forEach(function (p) {
			procs.appendChild(el('span', null, p.role + ' ',
			    badge(p.state), ' pid ' + (p.pid || '–')));
		});
	}

	function renderQueues(o) {
		var tb = clear($('queues').tBodies[0]);
		o.queues.forEach(function (q) {
			var st = q.parked ? badge('parked') :
			    q.busy + q.idle === 0 && q.concurrency > 0 ?
			    el('span', { class: 'badge bad' }, 'no worker') :
			    q.concurrency === 0 ? el('span', { class: 'badge' },
			    'not consumed') : badge('ok');
			tb.appendChild(el('tr', null,
			    el('td', null, q.name),
			    el('td', { class: 'num' }, fmtNum(q.messages)),
			    el('td', { class: 'num' }, q.oldest_age === null ?
			    '–' : fmtSecs(q.oldest_age)),
			    el('td', { class: 'num', title: 'tasks per minute' },
			    (q.rate * 60).toFixed(1)),
			    el('td', { class: 'num' }, q.busy + ' / ' +
			    (q.busy + q.idle)),
			    el('td', null, st)));
		});
	}

	function renderStats(o) {
		var tb = clear($('stats').tBodies[0]);
		$('stats-empty').classList.toggle('hidden', o.tasks.length > 0);
		o.tasks.slice().sort(function (a, b) {
			return (b.succeeded + b.failed) - (a.succeeded + a.failed);
		}).forEach(function (t) {
			var done = t.succeeded + t.failed, fill = el('span'),
			    pct = done ? t.succeeded / done * 100 : 100;
			fill.style.width = pct.toFixed(1) + '%';
			tb.appendChild(el('tr', null,
			    el('td', { class: 'task-name' }, t.task),
			    el('td', null, t.queue),
			    el('td', { class: 'num' }, fmtNum(t.succeeded)),
			    el('td', { class: 'num' }, fmtNum(t.failed)),
			    el('td', { class: 'num' }, fmtNum(t.retried)),
			    el('td', { class: 'num' }, fmtNum(t.revoked)),
			    el('td', { class: 'num' }, fmtNum(t.active)),
			    el('td', { class: 'num' }, fmtSecs(t.avg_seconds)),
			    el('td', { class: 'num' }, fmtSecs(t.p50_seconds)),
			    el('td', { class: 'num' }, fmtSecs(t.p95_seconds)),
			    el('td', { title: pct.toFixed(1) + '% succeeded' },
			    el('div', { class: 'bar' }, fill))));
		});
	}

	/* ---- tasks ---- */

	function renderTasks(res) {
		var tb = clear($('tasks').tBodies[0]), list, empty = $('tasks-empty');
		if (!res.ok) {
			empty.textContent = (res.body && res.body.error) ||
			    'Cannot load the tasks.';
			empty.classList.remove('hidden');
			return;
		}
		list = res.body.tasks || [];
		$('tasks-source').textContent = res.body.error ? res.body.error :
		    'from the ' + ({ scoreboard: 'scoreboard (live)',
		    database: 'job database', results: 'result backend' }[
		    res.body.source] || res.body.source);
		empty.textContent = state.search ? 'No task matches "' +
		    state.search + '".' : state.view === 'running' ?
		    'No task is running.' : state.view === 'failed' ?
		    'No failed task.' : 'No task yet.';
		empty.classList.toggle('hidden', list.length > 0);
		list.forEach(function (t) {
			var worker = t.worker || (t.worker_pid ? 'pid ' +
			    t.worker_pid : t.worker_host || '–');
			tb.appendChild(el('tr', { onclick: function () {
				openDetail(t.task_id);
			} },
			    el('td', null, el('span', { class: 'task-name' },
			    t.name || '(unknown)'), el('span',
			    { class: 'task-id mono', title: t.task_id },
			    shortId(t.task_id) + (t.job_id ? ' · job ' +
			    t.job_id : ''))),
			    el('td', null, t.queue || '–'),
			    el('td', null, badge(t.status)),
			    el('td', null, fmtTime(t.started_at || t.created_at ||
			    t.finished_at || (t.runtime !== undefined &&
			    state.view === 'running' ? Date.now() / 1000 -
			    t.runtime : null))),
			    el('td', { class: 'num' }, fmtSecs(t.runtime)),
			    el('td', { class: 'num' }, t.retries === undefined ?
			    '–' : t.retries),
			    el('td', { class: 'muted nowrap', title:
			    t.worker_host || '' }, worker)));
		});
	}

	function loadTasks() {
		var q = '/monitor/api/tasks?view=' + state.view + '&limit=50';
		if (state.search)
			q += '&q=' + encodeURIComponent(state.search);
		return api(q).then(renderTasks);
	}

	/* ---- graphs ---- */

	/* A step of 1, 2 or 5 times a power of ten, at least v. */
	function niceStep(v) {
		var p, m;
		if (!(v > 0))
			return 0.25;
		p = Math.pow(10, Math.floor(Math.log10(v)));
		m = v / p;
		return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
	}

	/* The window shown: the smallest of 5, 15, 30, 60 minutes that
	 * holds every sample, so a fresh start is not a dot at the edge. */
	function chartSpan() {
		var s = state.samples, age, spans = [300, 900, 1800, HOUR], i;
		if (!s.length)
			return spans[0];
		age = Date.now() / 1000 - s[0].t;
		for (i = 0; i < spans.length - 1 && age > spans[i]; i++)
			;
		return spans[i];
	}

	function fmtTick(m) {
		if (m >= 1000)
			return (m / 1000).toFixed(m % 1000 ? 1 : 0) + 'k';
		if (m === 0 || m >= 10 || Math.round(m) === m)
			return m.toFixed(0);
		return m >= 1 ? m.toFixed(1) : String(+m.toPrecision(2));
	}

	function drawChart(canvas, lines, legendBox) {
		var dpr = window.devicePixelRatio || 1, w = canvas.clientWidth,
		    h = canvas.clientHeight, ctx = canvas.getContext('2d'),
		    now = Date.now() / 1000, span = chartSpan(), t0 = now - span,
		    max = 0, padL = 40, padB = 18, padT = 6, pw, ph, i, k, y, x,
		    step, nx = 5;
		if (!w || !h)
			return;
		canvas.width = Math.round(w * dpr);
		canvas.height = Math.round(h * dpr);
		ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
		ctx.clearRect(0, 0, w, h);
		lines.forEach(function (l) {
			l.points.forEach(function (p) {
				if (p[0] >= t0 && p[1] !== null && p[1] > max)
					max = p[1];
			});
		});
		step = niceStep(max * 1.1 / 4);
		max = step * 4;
		pw = w - padL - 6;
		ph = h - padB - padT;
		ctx.font = '11px system-ui, "Liberation Sans", sans-serif';
		ctx.fillStyle = '#6b7686';
		ctx.strokeStyle = '#e3e8ef';
		ctx.lineWidth = 1;
		for (k = 0; k <= 4; k++) {
			y = padT + ph - ph * k / 4;
			ctx.beginPath();
			ctx.moveTo(padL, Math.round(y) + 0.5);
			ctx.lineTo(padL + pw, Math.round(y) + 0.5);
			ctx.stroke();
			ctx.textAlign = 'right';
			ctx.fillText(fmtTick(step * k), padL - 6, y + 4);
		}
		for (k = 0; k <= nx; k++) {
			x = padL + pw * k / nx;
			ctx.textAlign = k === 0 ? 'left' : k === nx ? 'right' :
			    'center';
			ctx.fillText(k === nx ? 'now' : '-' +
			    Math.round(span / 60 * (nx - k) / nx) + ' min', x, h - 4);
		}
		lines.forEach(function (l) {
			var started = false, p, last = null;
			ctx.strokeStyle = l.color;
			ctx.fillStyle = l.color;
			ctx.lineWidth = 1.8;
			ctx.lineJoin = 'round';
			ctx.beginPath();
			for (i = 0; i < l.points.length; i++) {
				p = l.points[i];
				if (p[0] < t0 || p[1] === null) {
					started = false;
					continue;
				}
				x = padL + (p[0] - t0) / span * pw;
				y = padT + ph - p[1] / max * ph;
				if (started)
					ctx.lineTo(x, y);
				else
					ctx.moveTo(x, y);
				started = true;
				last = [x, y];
			}
			ctx.stroke();
			/* The latest value as a dot: visible even alone. */
			if (last) {
				ctx.beginPath();
				ctx.arc(last[0], last[1], 2.5, 0, 2 * Math.PI);
				ctx.fill();
			}
		});
		clear(legendBox);
		lines.forEach(function (l) {
			var sw = el('i');
			sw.style.background = l.color;
			legendBox.appendChild(el('span', null, sw, l.label));
		});
	}

	function renderCharts() {
		var s = state.samples, ok = [], bad = [], dur = [], depth = [], i,
		    a, b, dt, dc;
		for (i = 1; i < s.length; i++) {
			a = s[i - 1];
			b = s[i];
			dt = b.t - a.t;
			if (dt <= 0 || dt > state.interval * 4) {
				ok.push([b.t, null]);
				bad.push([b.t, null]);
				dur.push([b.t, null]);
				continue;
			}
			ok.push([b.t, Math.max(0, b.succeeded - a.succeeded) / dt * 60]);
			bad.push([b.t, Math.max(0, b.failed - a.failed) / dt * 60]);
			dc = b.duration_count - a.duration_count;
			dur.push([b.t, dc > 0 ? (b.duration_sum - a.duration_sum) /
			    dc : null]);
		}
		drawChart($('chart-tp'), [
			{ label: 'succeeded', color: '#16a34a', points: ok },
			{ label: 'failed', color: '#dc2626', points: bad }
		], $('legend-tp'));
		drawChart($('chart-dur'), [
			{ label: 'all tasks', color: '#2563eb', points: dur }
		], $('legend-dur'));
		state.queues.forEach(function (q, k) {
			depth.push({ label: q, color: COLORS[k % COLORS.length],
			    points: s.map(function (x) {
				var v = x.depth[k];
				return [x.t, v === undefined ? null : v];
			    }) });
		});
		drawChart($('chart-depth'), depth, $('legend-depth'));
	}

	function loadSeries() {
		return api('/monitor/api/series?since=' + state.lastT).then(
		    function (res) {
			var cut = Date.now() / 1000 - HOUR - 60;
			if (!res.ok)
				return;
			state.interval = res.body.interval || 5;
			state.queues = res.body.queues || [];
			res.body.samples.forEach(function (x) {
				state.samples.push(x);
				state.lastT = x.t;
			});
			while (state.samples.length && state.samples[0].t < cut)
				state.samples.shift();
			renderCharts();
		});
	}

	/* ---- details, revoke and retry ---- */

	function kv(list) {
		var dl = el('dl', { class: 'kv' });
		list.forEach(function (p) {
			if (p[1] === null || p[1] === undefined || p[1] === '')
				return;
			dl.appendChild(el('dt', null, p[0]));
			dl.appendChild(el('dd', p[2] ? { class: p[2] } : null,
			    p[1]));
		});
		return dl;
	}

	function section(title) {
		var s = el('div', { class: 'section' }, el('h3', null, title));
		for (var i = 1; i < arguments.length; i++)
			s.appendChild(arguments[i]);
		return s;
	}

	function pre(v, cls) {
		return el('pre', { class: 'json' + (cls ? ' ' + cls : '') },
		    typeof v === 'string' ? v : JSON.stringify(v, null, 2));
	}

	function action(kind, id) {
		if (!state.token) {
			showTokenModal();
			return;
		}
		api('/monitor/api/tasks/' + encodeURIComponent(id) + '/' + kind,
		    { method: 'POST' }).then(function (res) {
			if (res.ok) {
				toast(kind === 'revoke' ? 'Task revoked.' :
				    'Sent again as ' + shortId(res.body.task_id) +
				    '.');
				if (kind === 'retry' && res.body.task_id)
					openDetail(res.body.task_id);
				else
					openDetail(id);
				refresh();
			} else {
				if (res.status === 401) {
					setToken('');
					showTokenModal();
				}
				toast((res.body && res.body.error) ||
				    'Failed (' + res.status + ')', true);
			}
		});
	}

	function renderDetail(id, res) {
		var body = clear($('d-body')), d = res.body, status, acts, ev;
		$('d-id').textContent = id;
		if (!res.ok) {
			$('d-title').textContent = 'Task';
			body.appendChild(el('div', { class: 'empty' },
			    (d && d.error) || 'Not found.'));
			return;
		}
		if (d.source === 'results') {
			var m = d.meta || {}, r = d.running;
			status = r ? 'started' : ({ SUCCESS: 'succeeded',
			    FAILURE: 'failed', REVOKED: 'revoked',
			    RETRY: 'retrying', STARTED: 'started' }[m.status] ||
			    'pending');
			clear($('d-title')).appendChild(document.createTextNode(
			    (r && r.name) || m.name || 'Task'));
			$('d-title').appendChild(badge(status));
			body.appendChild(kv([
				['Queue', r && r.queue],
				['Worker', r && r.worker],
				['Running for', r && fmtSecs(r.runtime)],
				['Finished', m.date_done && fmtDateTime(m.date_done + 'Z')],
				['Source', 'result backend (no job database)']
			]));
			if (m.status === 'FAILURE')
				body.appendChild(section('Error', pre(m.result &&
				    m.result.exc_type ? m.result.exc_type + ': ' +
				    (m.result.exc_message || []).join(' ') :
				    m.result, 'error')));
			else if (m.result !== undefined)
				body.appendChild(section('Result', pre(m.result)));
			if (m.traceback)
				body.appendChild(section('Traceback',
				    pre(m.traceback, 'error')));
		} else {
			status = d.status;
			clear($('d-title')).appendChild(document.createTextNode(
			    d.task_name || 'Task'));
			$('d-title').appendChild(badge(status));
			body.appendChild(kv([
				['Job', d.job_id !== undefined ? '#' + d.job_id +
				    (d.job_type ? ' (' + d.job_type + ')' : '') :
				    null],
				['Queue', d.queue],
				['Worker', d.worker_host ? d.worker_host +
				    (d.worker_pid ? ' pid ' + d.worker_pid : '') :
				    null],
				['Retries', String(d.retries)],
				['Created', fmtDateTime(d.created_at)],
				['Queued', d.queued_at && fmtDateTime(d.queued_at)],
				['Started', d.started_at && fmtDateTime(d.started_at)],
				['Finished', d.finished_at &&
				    fmtDateTime(d.finished_at)],
				['Duration', d.duration_seconds !== null ?
				    fmtSecs(d.duration_seconds) : null],
				['File', d.file_path, 'mono']
			]));
			if (d.params)
				body.appendChild(section('Arguments', pre(d.params)));
			if (d.error)
				body.appendChild(section('Error', pre((d.error.type ||
				    'Error') + ': ' + (d.error.message || ''),
				    'error')));
			if (d.result !== null && d.result !== undefined)
				body.appendChild(section('Result', pre(d.result)));
			ev = el('ul', { class: 'timeline' });
			(d.events || []).forEach(function (e) {
				ev.appendChild(el('li', null, el('span', null,
				    badge(e.status)), el('span', null,
				    fmtDateTime(e.at), e.detail ? el('span',
				    { class: 'muted mono' }, '  ' +
				    JSON.stringify(e.detail)) : null)));
			});
			body.appendChild(section('History', ev));
		}
		if (state.overview && state.overview.auth) {
			acts = el('div', { class: 'actions' });
			if (!TERMINAL[status])
				acts.appendChild(el('button', { type: 'button',
				    class: 'btn danger', onclick: function () {
					action('revoke', id);
				    } }, 'Revoke'));
			if (d.source !== 'results' && TERMINAL[status])
				acts.appendChild(el('button', { type: 'button',
				    class: 'btn primary', onclick: function () {
					action('retry', id);
				    } }, 'Retry'));
			if (acts.firstChild)
				body.insertBefore(section('Actions', acts),
				    body.firstChild);
		}
	}

	function openDetail(id) {
		state.detail = id;
		if (window.location.hash !== '#task/' + id)
			history.replaceState(null, '', '#task/' + id);
		$('drawer').classList.remove('hidden');
		$('scrim').classList.remove('hidden');
		return api('/monitor/api/tasks/' + encodeURIComponent(id)).then(
		    function (res) {
			if (state.detail === id)
				renderDetail(id, res);
		});
	}

	function closeDetail() {
		state.detail = null;
		$('drawer').classList.add('hidden');
		$('scrim').classList.add('hidden');
		history.replaceState(null, '', window.location.pathname);
	}

	/* ---- token ---- */

	function setToken(t) {
		state.token = t;
		try {
			if (t)
				window.sessionStorage.setItem('celeriac.token', t);
			else
				window.sessionStorage.removeItem('celeriac.token');
		} catch (e) {
			/* private mode: keep it in memory only */
		}
		if (state.overview)
			renderTop(state.overview);
	}

	function showTokenModal() {
		$('token-modal').classList.remove('hidden');
		$('token-input').value = '';
		$('token-input').focus();
	}

	/* ---- refresh ---- */

	function refresh() {
		return Promise.all([
			api('/monitor/api/overview').then(function (res) {
				if (!res.ok)
					return;
				state.overview = res.body;
				renderTop(res.body);
				renderWorkers(res.body);
				renderQueues(res.body);
				renderStats(res.body);
			}),
			loadTasks(),
			loadSeries()
		]).then(function () {
			if (state.overview)
				renderTiles(state.overview);
		}).catch(function (e) {
			$('pill-broker').className = 'pill bad';
			$('pill-broker').textContent = 'monitor unreachable';
			if (window.console)
				console.warn('refresh failed: ' + e);
		});
	}

	function schedule() {
		clearInterval(state.timer);
		state.timer = state.live ? setInterval(refresh, REFRESH_MS) : null;
		$('btn-live').textContent = state.live ? 'Live' : 'Paused';
		$('btn-live').classList.toggle('paused', !state.live);
	}

	function init() {
		var searchTimer;
		Array.prototype.forEach.call(document.querySelectorAll('.tab'),
		    function (b) {
			b.addEventListener('click', function () {
				Array.prototype.forEach.call(
				    document.querySelectorAll('.tab'),
				    function (x) {
					x.classList.toggle('active', x === b);
				    });
				state.view = b.getAttribute('data-view');
				loadTasks();
			});
		});
		$('search').addEventListener('input', function () {
			clearTimeout(searchTimer);
			searchTimer = setTimeout(function () {
				state.search = $('search').value.trim();
				loadTasks();
			}, 250);
		});
		$('btn-live').addEventListener('click', function () {
			state.live = !state.live;
			schedule();
			if (state.live)
				refresh();
		});
		$('btn-token').addEventListener('click', function () {
			if (state.token) {
				setToken('');
				toast('Actions locked.');
			} else
				showTokenModal();
		});
		$('token-cancel').addEventListener('click', function () {
			$('token-modal').classList.add('hidden');
		});
		$('token-form').addEventListener('submit', function (ev) {
			ev.preventDefault();
			setToken($('token-input').value.trim());
			$('token-modal').classList.add('hidden');
			if (state.detail)
				openDetail(state.detail);
		});
		$('d-close').addEventListener('click', closeDetail);
		$('scrim').addEventListener('click', closeDetail);
		document.addEventListener('keydown', function (ev) {
			if (ev.key === 'Escape')
				closeDetail();
		});
		window.addEventListener('resize', renderCharts);
		refresh().then(function () {
			var m = /^#task\/(.+)$/.exec(window.location.hash);
			if (m)
				openDetail(decodeURIComponent(m[1]));
		});
		schedule();
	}

	if (document.readyState === 'loading')
		document.addEventListener('DOMContentLoaded', init);
	else
		init();
}());
