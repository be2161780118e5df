/* nrrcast report: account list and account pages drawn from the embedded JSON.
   Data is only ever written with textContent / setAttribute, never as HTML. */
(function () {
  'use strict';

  const SVGNS = 'http://www.w3.org/2000/svg';
  let D = null;          // payload
  let A = [];            // one object per account
  const byId = new Map();
  const state = { q: '', seg: '', csm: '', band: '', cov: '', chg: '', flag: '', sort: 'pri', dir: 'desc', shown: 100 };
  let lastListHash = '#accounts';

  // ------------------------------------------------------------------ helpers
  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }
  function s(tag, attrs, ...kids) {
    const e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    append(e, kids);
    return e;
  }
  function setAttrs(e, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
  }
  function append(e, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      e.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
  }
  const $ = (id) => document.getElementById(id);
  const dec = (arr, code) => (code >= 0 && code < arr.length ? arr[code] : null);
  const isNum = (v) => typeof v === 'number' && isFinite(v);

  function money(v, signed) {
    if (!isNum(v)) return '—';
    const sign = v < 0 ? '-' : (signed && v > 0 ? '+' : '');
    const a = Math.abs(v);
    let body;
    if (a >= 1e9) body = (a / 1e9).toFixed(1) + 'B';
    else if (a >= 1e6) body = (a / 1e6).toFixed(1) + 'M';
    else if (a >= 1e4) body = (a / 1e3).toFixed(0) + 'k';
    else if (a >= 1e3) body = (a / 1e3).toFixed(1) + 'k';
    else body = a.toFixed(0);
    return sign + '$' + body;
  }
  const pct = (v, d = 1) => (isNum(v) ? (v * 100).toFixed(d) + '%' : '—');
  const pts = (v) => (isNum(v) ? (v >= 0 ? '+' : '') + (v * 100).toFixed(1) + ' pts' : '—');
  // names and their labels come from the payload (features.names.vocabulary), never re-typed here
  const segLabel = (v) => (v === null ? '—' : (D.vocab.segment_labels[v] || v.replace(/_/g, ' ')));
  const segShort = (v) => (v === null ? '—' : (D.vocab.segment_short[v] || segLabel(v)));
  const covLabel = (v) => (v === null ? '—' : (D.vocab.coverage_labels[v] || v.replace(/_/g, ' ')));
  const featLabel = (v) => (v === null ? '—' : (D.labels.feature[v] || v.replace(/_/g, ' ')));
  const accountHref = (a) => '#account/' + encodeURIComponent(a.id);

  function fmtValue(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'number') {
      const a = Math.abs(v);
      if (a >= 1e4) return v.toLocaleString('en-US', { maximumFractionDigits: 0 });
      if (a >= 100) return v.toFixed(0);
      if (Number.isInteger(v)) return String(v);
      return v.toFixed(a >= 10 ? 1 : 2);
    }
    return String(v);
  }

  // ------------------------------------------------------------------ data
  async function loadData() {
    const node = $('nrr-data');
    let text = node.textContent;
    if (node.getAttribute('data-encoding') === 'gzip+base64') {
      const bin = atob(text.trim());
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
      text = await new Response(stream).text();
    }
    return JSON.parse(text);
  }

  function build() {
    const a = D.acc, d = D.dict, n = a.id.length;
    A = new Array(n);
    for (let i = 0; i < n; i++) {
      const acc = {
        i, id: a.id[i], name: a.name[i] === null ? a.id[i] : a.name[i],
        csm: dec(d.csm, a.csm[i]), seg: dec(d.seg, a.seg[i]), mat: dec(d.mat, a.mat[i]),
        cov: dec(d.cov, a.cov[i]), rec: dec(d.cov, a.rec[i]), chg: dec(d.chg, a.chg[i]),
        cb: dec(d.band, a.cb[i]), eb: dec(d.band, a.eb[i]),
        atRisk: (a.flag[i] & 1) === 1, ready: (a.flag[i] & 2) === 2,
        pc: a.pc[i], pe: a.pe[i], dpc: a.dpc[i], dpe: a.dpe[i],
        arr: a.arr[i], tam: a.tam[i], ws: a.ws[i], pri: a.pri[i], risk: a.risk[i], gain: a.gain[i],
        pb: dec(d.pb, a.pb[i]), pbr: dec(d.pbr, a.pbr[i]),
        gap: dec(d.gap, a.gap[i]), wc: dec(d.wc, a.wc[i]), own: dec(d.own, a.own[i]),
        due: dec(d.due, a.due[i]), stp: dec(d.stp, a.stp[i]), suc: dec(d.suc, a.suc[i]),
      };
      acc.key = (String(acc.name) + ' ' + String(acc.id)).toLowerCase();
      A[i] = acc;
      byId.set(acc.id, acc);
    }
  }

  function reasonsOf(i) {
    const r = D.reasons, targets = Object.keys(D.vocab.targets), out = [];
    for (let k = r.off[i]; k < r.off[i + 1]; k++) {
      out.push({
        target: targets[r.t[k]], feature: dec(D.dict.feature, r.f[k]),
        value: r.v[k], c: r.c[k], sentence: dec(D.dict.sentence, r.s[k]) || '',
        state: r.g ? dec(D.dict.state, r.g[k]) : null,
      });
    }
    return out;
  }

  function historyOf(i) {
    const hh = D.hist, T = hh.dates.length, out = [];
    const per = (v) => (isNum(v) ? v / 1000 : null);
    for (let t = 0; t < T; t++) {
      const pc = per(hh.pc[i * T + t]), pe = per(hh.pe[i * T + t]);
      if (pc !== null || pe !== null) out.push({ date: hh.dates[t], pc, pe });
    }
    return out;
  }

  // ------------------------------------------------------------------ routing
  function show(view) {
    for (const v of ['portfolio', 'accounts', 'account', 'technical']) {
      $('view-' + v).hidden = v !== view;
      const tab = $('tab-' + v);
      if (tab) tab.classList.toggle('active', v === view);
    }
    $('tab-account').hidden = view !== 'account';
  }

  function route() {
    const raw = location.hash.slice(1);
    if (raw.startsWith('account/')) {
      let id;
      try { id = decodeURIComponent(raw.slice(8)); } catch (e) { id = raw.slice(8); }
      show('account');
      renderAccount(id);
      window.scrollTo(0, 0);
    } else if (raw === 'accounts' || raw.startsWith('accounts?')) {
      readState(raw.indexOf('?') >= 0 ? raw.slice(raw.indexOf('?') + 1) : '');
      lastListHash = '#' + raw;
      $('tab-accounts').setAttribute('href', lastListHash);
      show('accounts');
      renderList();
    } else if (raw === 'technical') {
      show('technical');
    } else {
      show('portfolio');
    }
  }

  // ------------------------------------------------------------------ account list
  const FILTERS = ['q', 'seg', 'csm', 'band', 'cov', 'chg', 'flag'];

  function readState(query) {
    const p = new URLSearchParams(query);
    for (const k of FILTERS) state[k] = p.get(k) || '';
    state.sort = p.get('sort') || 'pri';
    state.dir = p.get('dir') || (state.sort === 'name' ? 'asc' : 'desc');
    state.shown = D.page_size;
    $('f-q').value = state.q;
    for (const k of FILTERS.slice(1)) {
      const sel = $('f-' + k);
      sel.value = state[k];
      if (sel.value !== state[k]) { state[k] = ''; sel.value = ''; }
    }
    $('f-sort').value = state.sort;
  }

  function writeState() {
    const p = new URLSearchParams();
    for (const k of FILTERS) if (state[k]) p.set(k, state[k]);
    if (state.sort !== 'pri') p.set('sort', state.sort);
    if (state.dir !== (state.sort === 'name' ? 'asc' : 'desc')) p.set('dir', state.dir);
    const qs = p.toString();
    lastListHash = '#accounts' + (qs ? '?' + qs : '');
    history.replaceState(null, '', lastListHash);
    $('tab-accounts').setAttribute('href', lastListHash);
  }

  function filtered() {
    const q = state.q.trim().toLowerCase();
    const out = A.filter((a) =>
      (!q || a.key.includes(q)) &&
      (!state.seg || a.seg === state.seg) &&
      (!state.csm || (state.csm === '(unassigned)' ? a.csm === null : a.csm === state.csm)) &&
      (!state.band || a.cb === state.band) &&
      (!state.cov || a.cov === state.cov) &&
      (!state.chg || a.chg === state.chg) &&
      (!state.flag || (state.flag === 'risk' ? a.atRisk : a.ready)));
    const key = state.sort, sign = state.dir === 'asc' ? 1 : -1;
    if (key === 'name') {
      out.sort((x, y) => sign * String(x.name).localeCompare(String(y.name)));
    } else {
      out.sort((x, y) => {
        const a = x[key], b = y[key];
        if (!isNum(a)) return isNum(b) ? 1 : 0;
        if (!isNum(b)) return -1;
        return sign * (a - b) || (y.arr || 0) - (x.arr || 0);
      });
    }
    return out;
  }

  function bandChip(band, target) {
    return band === null ? '' : h('span', { class: 'chip ' + band + ' ' + target, text: band });
  }

  function deltaCell(v, goodWhenUp) {
    if (!isNum(v) || Math.abs(v) < 0.0005) return h('td', { class: 'n muted', text: isNum(v) ? '0.0' : '—' });
    const up = v > 0;
    const cls = goodWhenUp ? (up ? 'd-up-good' : 'd-down-bad') : (up ? 'up' : 'down');
    return h('td', { class: 'n ' + cls + (up ? ' arrow-up' : ' arrow-down'), text: (Math.abs(v) * 100).toFixed(1) });
  }

  function coverageText(a) {
    if (a.chg === 'upgrade' || a.chg === 'downgrade') {
      return h('span', { class: a.chg === 'upgrade' ? 'up' : 'down', title: a.chg },
        covLabel(a.cov) + ' → ' + covLabel(a.rec));
    }
    return h('span', { text: covLabel(a.cov !== null ? a.cov : a.rec) });
  }

  function rowEl(a) {
    return h('tr', { 'data-i': a.i },
      h('td', { class: 'name', title: a.name }, h('a', { href: accountHref(a), text: a.name })),
      h('td', { text: a.csm === null ? '—' : a.csm }),
      h('td', { title: segLabel(a.seg) }, h('span', { class: 'seg-dot seg-' + (a.seg || 'none') }), segShort(a.seg)),
      h('td', { text: a.mat === null ? '—' : a.mat }),
      h('td', { class: 'n', text: money(a.arr) }),
      h('td', { class: 'n' }, pct(a.pc), ' ', bandChip(a.cb, 'churn')),
      deltaCell(a.dpc, false),
      h('td', { class: 'n' }, pct(a.pe), ' ', bandChip(a.eb, 'expand')),
      h('td', null, coverageText(a)),
      h('td', { class: 'n', text: money(a.pri) }),
      h('td', { class: 'pb', title: a.pb || '', text: a.pb || '—' }));
  }

  function renderList() {
    const rows = filtered();
    const shown = rows.slice(0, state.shown);
    $('account-rows').replaceChildren(...shown.map(rowEl));
    $('list-empty').hidden = rows.length > 0;
    $('list-more').hidden = rows.length <= state.shown;
    $('list-count').textContent = rows.length.toLocaleString('en-US') + ' of ' + A.length.toLocaleString('en-US') +
      ' accounts' + (rows.length > shown.length ? ' · showing ' + shown.length.toLocaleString('en-US') : '');
    let arr = 0, risk = 0, nRisk = 0, riskFlagged = 0;
    for (const a of rows) {
      arr += a.arr || 0; risk += a.risk || 0; nRisk += a.atRisk ? 1 : 0;
      riskFlagged += a.atRisk ? (a.risk || 0) : 0;
    }
    const n = rows.length.toLocaleString('en-US');
    $('list-totals').textContent = 'These ' + n + ': ARR ' + money(arr) + ' · expected loss ' + money(risk) +
      ' · ' + nRisk + ' at risk, expected loss on them ' + money(riskFlagged);
    for (const th of document.querySelectorAll('#account-table th.sortable')) {
      const on = th.getAttribute('data-sort') === state.sort;
      th.classList.toggle('sorted', on);
      th.classList.toggle('asc', on && state.dir === 'asc');
    }
  }

  function fillSelect(id, values, label) {
    const sel = $(id);
    for (const [value, text] of values) sel.append(h('option', { value, text: label ? label(text) : text }));
  }

  function countBy(field) {
    const m = new Map();
    for (const a of A) m.set(a[field], (m.get(a[field]) || 0) + 1);
    return m;
  }

  function setupList() {
    const segs = countBy('seg');
    const segOrder = D.vocab.segments;
    const segVals = [...segs.keys()].filter((v) => v !== null)
      .sort((x, y) => (segOrder.indexOf(x) + 99) % 99 - (segOrder.indexOf(y) + 99) % 99 || x.localeCompare(y));
    fillSelect('f-seg', segVals.map((v) => [v, segLabel(v) + ' (' + segs.get(v) + ')']));
    const csms = countBy('csm');
    const csmVals = [...csms.keys()].filter((v) => v !== null).sort((x, y) => x.localeCompare(y));
    fillSelect('f-csm', csmVals.map((v) => [v, v + ' (' + csms.get(v) + ')']));
    if (csms.has(null)) fillSelect('f-csm', [['(unassigned)', '(unassigned) (' + csms.get(null) + ')']]);
    const bands = countBy('cb');
    fillSelect('f-band', D.vocab.bands.slice().reverse().filter((b) => bands.has(b)).map((b) => [b, b + ' (' + bands.get(b) + ')']));
    const covs = countBy('cov');
    const levels = D.vocab.coverage_levels.slice().reverse();  // heaviest touch first
    fillSelect('f-cov', levels.concat([...covs.keys()].filter((v) => v !== null && !levels.includes(v)))
      .filter((c) => covs.has(c)).map((c) => [c, covLabel(c) + ' (' + covs.get(c) + ')']));
    const chgs = countBy('chg');
    fillSelect('f-chg', [['upgrade', 'Upgrade'], ['downgrade', 'Downgrade'], ['aligned', 'Aligned'], ['unknown', 'Unknown']]
      .filter(([c]) => chgs.has(c)).map(([c, t]) => [c, t + ' (' + chgs.get(c) + ')']));

    const onChange = () => {
      for (const k of FILTERS) state[k] = $('f-' + k).value;
      const sort = $('f-sort').value;
      if (sort !== state.sort) { state.sort = sort; state.dir = sort === 'name' ? 'asc' : 'desc'; }
      state.shown = D.page_size;
      writeState();
      renderList();
    };
    for (const k of FILTERS.slice(1).concat(['sort'])) $('f-' + k).addEventListener('change', onChange);
    $('f-q').addEventListener('input', onChange);
    $('f-reset').addEventListener('click', () => { location.hash = '#accounts'; });
    $('list-more').addEventListener('click', () => { state.shown += D.page_size * 5; renderList(); });
    for (const th of document.querySelectorAll('#account-table th.sortable')) {
      th.addEventListener('click', () => {
        const key = th.getAttribute('data-sort');
        if (key === state.sort) state.dir = state.dir === 'asc' ? 'desc' : 'asc';
        else { state.sort = key; state.dir = key === 'name' ? 'asc' : 'desc'; }
        $('f-sort').value = state.sort;
        writeState();
        renderList();
      });
    }
    $('account-rows').addEventListener('click', (ev) => {
      if (ev.target.closest('a')) return;
      const tr = ev.target.closest('tr');
      if (tr) location.hash = accountHref(A[Number(tr.getAttribute('data-i'))]);
    });
  }

  // ------------------------------------------------------------------ charts
  function historyChart(hist) {
    const W = 560, H = 210, L = 44, R = 14, T = 14, B = 30;
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Probability history', id: 'chart-history' });
    const times = hist.map((p) => Date.parse(p.date));
    const t0 = Math.min(...times), t1 = Math.max(...times);
    const thr = D.thresholds || {};
    let top = Math.max(0.2, ...hist.map((p) => Math.max(p.pc || 0, p.pe || 0)), thr.churn || 0, thr.expand || 0);
    top = Math.min(1, Math.ceil(top * 10 + 0.5) / 10);
    const x = (t) => (t1 === t0 ? (L + W - R) / 2 : L + (t - t0) / (t1 - t0) * (W - L - R));
    const y = (v) => T + (1 - v / top) * (H - T - B);
    const step = top > 0.5 ? 0.2 : 0.1;
    for (let v = 0; v <= top + 1e-9; v += step) {
      svg.append(s('line', { class: 'axis', x1: L, x2: W - R, y1: y(v), y2: y(v) }),
        s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', text: Math.round(v * 100) + '%' }));
    }
    for (const key of ['churn', 'expand']) {
      if (isNum(thr[key])) svg.append(s('line', { class: 'thr ' + key, x1: L, x2: W - R, y1: y(thr[key]), y2: y(thr[key]) },
        s('title', { text: key + ' threshold ' + pct(thr[key]) })));
    }
    const labelIdx = new Set([0, hist.length - 1, Math.floor((hist.length - 1) / 2)]);
    hist.forEach((p, k) => {
      if (labelIdx.has(k)) svg.append(s('text', { x: x(times[k]), y: H - 10, 'text-anchor': k === 0 && hist.length > 1 ? 'start' : (k === hist.length - 1 && hist.length > 1 ? 'end' : 'middle'), text: p.date }));
    });
    for (const [key, cls] of [['pc', 'churn'], ['pe', 'expand']]) {
      const pts = hist.map((p, k) => [x(times[k]), p[key]]).filter((q) => isNum(q[1]));
      if (pts.length > 1) svg.append(s('polyline', { class: 'line ' + cls, points: pts.map((q) => q[0].toFixed(1) + ',' + y(q[1]).toFixed(1)).join(' ') }));
      hist.forEach((p, k) => {
        if (isNum(p[key])) svg.append(s('circle', { class: 'dot ' + cls, cx: x(times[k]), cy: y(p[key]), r: 3 },
          s('title', { text: (cls === 'churn' ? 'p(churn) ' : 'p(expand) ') + p.date + ': ' + pct(p[key]) })));
      });
    }
    return svg;
  }

  function ptsText(v) { const p = (v || 0) * 100; return (p > 0 ? '+' : p < 0 ? '−' : '') + Math.abs(p).toFixed(1) + ' pts'; }

  function waterfall(items, target) {
    const rowH = 34, L = 290, R = 84, T = 8, W = 640;
    const rows = items.length + 1;
    const H = T + rows * rowH + 26;
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'waterfall', 'data-target': target,
      'aria-label': (target === 'churn' ? 'Churn' : 'Expansion') + ' drivers waterfall' });
    let acc = 0, lo = 0, hi = 0;
    const spans = items.map((it) => { const a = acc; acc += it.c || 0; lo = Math.min(lo, a, acc); hi = Math.max(hi, a, acc); return [a, acc]; });
    const span = (hi - lo) || 1;
    const x = (v) => L + (v - lo) / span * (W - L - R);
    svg.append(s('line', { class: 'ref', x1: x(0), x2: x(0), y1: T - 4, y2: T + rows * rowH }));
    items.forEach((it, k) => {
      const [a, b] = spans[k];
      const yy = T + k * rowH;
      const bad = target === 'churn' ? it.c > 0 : it.c < 0;
      const name = String(featLabel(it.feature)).split(':')[0];  // the name, not the definition
      // the full label, on two lines when long (never cut)
      const cut = name.length > 40 ? (name.lastIndexOf(' ', 40) > 10 ? name.lastIndexOf(' ', 40) : 40) : name.length;
      const lines = [name.slice(0, cut), name.slice(cut).trim()].filter(Boolean);
      const label = s('text', { x: L - 8, y: yy + (lines.length > 1 ? 13 : 21), 'text-anchor': 'end', class: 'wf-label' },
        s('title', { text: name + (it.value !== null ? ' = ' + fmtValue(it.value) : '') }));
      lines.forEach((t, j) => label.append(s('tspan', { x: L - 8, dy: j ? 14 : 0, text: t })));
      svg.append(
        label,
        s('rect', { class: 'wf ' + (bad ? 'bad' : 'good'), x: Math.min(x(a), x(b)), y: yy + 5, width: Math.max(1.5, Math.abs(x(b) - x(a))), height: rowH - 10, rx: 2 },
          s('title', { text: it.sentence })),
        s('text', { class: 'val', x: Math.max(x(a), x(b)) + 5, y: yy + 21, text: ptsText(it.c) }));
      if (k < items.length - 1) svg.append(s('line', { class: 'wf-link', x1: x(b), x2: x(b), y1: yy + rowH - 5, y2: yy + rowH + 5 }));
    });
    const yy = T + items.length * rowH;
    svg.append(
      s('text', { x: L - 8, y: yy + 17, 'text-anchor': 'end', text: 'Net of listed drivers' }),
      s('rect', { class: 'wf total', x: Math.min(x(0), x(acc)), y: yy + 5, width: Math.max(1.5, Math.abs(x(acc) - x(0))), height: rowH - 10, rx: 2 }),
      s('text', { class: 'val', x: Math.max(x(0), x(acc)) + 5, y: yy + 21, text: ptsText(acc) }),
      s('text', { x: 8, y: H - 6, text: 'Probability points each driver adds to the ' + (target === 'churn' ? 'chance of churn' : 'chance of expansion') + ' (right of the line: adds)' }));
    return svg;
  }

  // ------------------------------------------------------------------ account page
  function fact(label, value) { return h('div', null, h('span', { text: label }), h('b', { text: value })); }

  function lowerFirst(t) { return t && /^[A-Z][a-z]/.test(t) ? t[0].toLowerCase() + t.slice(1) : t; }
  function trimDot(t) { return String(t || '').trim().replace(/[.\s]+$/, ''); }
  function listText(items) {
    const xs = items.map((t) => lowerFirst(trimDot(t))).filter(Boolean);
    if (xs.length <= 1) return xs.join('');
    return xs.slice(0, -1).join('; ') + '; and ' + xs[xs.length - 1];
  }

  function qbrSummary(a, reasons) {
    const hd = D.horizon_days;
    const out = [];
    const who = a.name + (a.seg ? ' (' + segLabel(a.seg) + (a.mat ? ', ' + a.mat + ' AI maturity' : '') + ')' : '');
    let p1 = who + ' is worth ' + money(a.arr) + ' ARR';
    if (isNum(a.tam) && isNum(a.arr) && a.tam > a.arr) {
      p1 += ' of an estimated ' + money(a.tam) + ' total addressable, leaving ' + money(a.tam - a.arr) + ' of whitespace (' + pct(a.arr / a.tam, 0) + ' penetrated)';
    } else if (isNum(a.tam)) {
      p1 += ', at or above its estimated total addressable revenue of ' + money(a.tam) + ' (check the TAM estimate)';
    } else {
      p1 += '; its total addressable revenue is not known';
    }
    out.push(p1 + '.');
    let p2 = 'As of ' + D.as_of + ', the model puts the chance of churn within ' + hd + ' days at ' + pct(a.pc, 0) + (a.cb ? ' (' + a.cb + ')' : '');
    if (isNum(a.dpc) && Math.abs(a.dpc) >= 0.005) p2 += ', ' + (a.dpc > 0 ? 'up ' : 'down ') + (Math.abs(a.dpc) * 100).toFixed(0) + ' points since ' + D.prev_as_of;
    p2 += ', and the chance of expanding at ' + pct(a.pe, 0) + (a.eb ? ' (' + a.eb + ')' : '') + '.';
    out.push(p2);
    // "working well" lists only healthy states; a risk driver is never called a strength
    const risks = reasons.filter((r) => r.target === 'churn' && r.c > 0 && r.state !== 'good').slice(0, 3).map((r) => r.sentence);
    const strengths = [...new Set(reasons.filter((r) => r.state === 'good' && ((r.target === 'churn' && r.c < 0) || (r.target === 'expand' && r.c > 0))).map((r) => r.sentence))].slice(0, 3);
    if (risks.length) out.push('Watch-outs: ' + listText(risks) + '.');
    if (strengths.length) out.push('Working well: ' + listText(strengths) + '.');
    let p5 = '';
    if (a.pb) p5 = 'Recommended plan: ' + a.pb + (a.pbr ? ' — ' + trimDot(a.pbr) : '') + '.';
    if (a.rec) p5 += (p5 ? ' ' : '') + (a.chg === 'upgrade' || a.chg === 'downgrade'
      ? 'Coverage should move from ' + covLabel(a.cov) + ' to ' + covLabel(a.rec) + '.'
      : 'Coverage stays ' + covLabel(a.rec) + '.');
    if (p5) out.push(p5);
    if (isNum(a.risk) || isNum(a.gain)) out.push('Expected ARR at stake: ' + money(a.risk) + ' at risk, ' + money(a.gain) + ' to gain.');
    return out;
  }

  function reasonCard(target, reasons) {
    const items = reasons.filter((r) => r.target === target);
    const card = h('div', { class: 'card', id: 'reasons-' + target },
      h('h3', { text: target === 'churn' ? 'Churn risk drivers' : 'Expansion drivers' }));
    if (!items.length) { card.append(h('div', { class: 'empty', text: 'No drivers recorded for this account.' })); return card; }
    card.append(h('ul', { class: 'reasons' }, items.map((r) => {
      const bad = target === 'churn' ? r.c > 0 : r.c < 0;
      return h('li', { class: (bad ? 'bad ' : 'good ') + (r.c > 0 ? 'raises' : 'lowers') },
        h('span', { text: r.sentence || featLabel(r.feature) }), h('span', { class: 'pts', text: ' ' + ptsText(r.c) }));
    })));
    card.append(waterfall(items, target));
    return card;
  }

  function renderAccount(id) {
    const root = $('account-root');
    const a = byId.get(id);
    const back = h('a', { class: 'back', href: lastListHash, text: '← Back to the account list' });
    if (!a) {
      $('tab-account').textContent = 'Account';
      root.replaceChildren(back, h('div', { class: 'card empty', text: 'No account with id "' + id + '" in this run.' }));
      return;
    }
    $('tab-account').textContent = a.name;
    const reasons = reasonsOf(a.i);
    const hist = historyOf(a.i);
    const chips = [
      a.seg && h('span', { class: 'chip' }, h('span', { class: 'seg-dot seg-' + a.seg }), segLabel(a.seg)),
      a.mat && h('span', { class: 'chip', text: a.mat }),
      a.atRisk && h('span', { class: 'chip risk', text: 'At risk' }),
      a.ready && h('span', { class: 'chip gain', text: 'Expansion-ready' }),
    ];
    const head = h('div', { class: 'acct-head' },
      h('h1', { id: 'account-name', text: a.name }),
      h('div', { class: 'ids', id: 'account-csm', text: a.id + ' · CSM ' + (a.csm === null ? 'unassigned' : a.csm) }),
      h('div', { class: 'chips' }, chips));
    const facts = h('div', { class: 'facts card' },
        fact('ARR', money(a.arr)), fact('TAM', money(a.tam)), fact('Whitespace', money(a.ws)),
        fact('Priority', money(a.pri)), fact('Coverage now', covLabel(a.cov)), fact('Recommended', covLabel(a.rec)));

    const prob = (label, v, band, dv, cls, goodUp) => h('div', { class: 'card' },
      h('h3', { text: label + ' within ' + D.horizon_days + ' days' }),
      h('div', { class: 'prob ' + cls },
        h('span', { class: 'big', id: 'p-' + cls, text: pct(v) }), bandChip(band, cls)),
      isNum(dv) ? h('div', { class: 'prob-note ' + ((dv > 0) === goodUp ? 'd-up-good' : 'd-down-bad'), text: pts(dv) + ' since ' + D.prev_as_of })
        : h('div', { class: 'prob-note muted', text: D.prev_as_of ? 'not scored on ' + D.prev_as_of : 'no earlier run' }));
    const histCard = h('div', { class: 'card' }, h('h3', { text: 'History' }));
    if (hist.length > 1) {
      histCard.append(historyChart(hist), h('div', { class: 'legend' },
        h('span', null, h('i', { class: 'churn' }), 'p(churn)'), h('span', null, h('i', { class: 'expand' }), 'p(expand)'),
        Object.keys(D.thresholds || {}).length ? h('span', { text: 'dashed: alert thresholds' }) : null));
    } else {
      histCard.append(h('div', { class: 'empty', text: 'First scoring run for this account: history starts with the next run.' }));
    }

    const summary = qbrSummary(a, reasons);
    const copy = h('button', { type: 'button', class: 'copy', text: 'Copy' });
    const qbr = h('div', { class: 'card qbr', id: 'qbr' }, h('h3', { text: 'QBR summary' }), copy,
      summary.map((t) => h('p', { text: t })));
    copy.addEventListener('click', () => {
      const text = summary.join('\n\n');
      const done = () => { copy.textContent = 'Copied'; };
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, () => selectNode(qbr));
      else selectNode(qbr);
    });

    const steps = a.stp ? a.stp.split(' / ').map((t) => t.replace(/^\d+\.\s*/, '')) : [];
    const playbook = h('div', { class: 'card playbook', id: 'playbook' }, h('h3', { text: 'Playbook' }),
      h('div', { class: 'name', text: a.pb || 'No playbook assigned' }),
      a.pbr ? h('p', { text: a.pbr }) : null,
      steps.length ? h('ol', { class: 'steps' }, steps.map((t) => h('li', { text: t }))) : null,
      (a.own || a.due) ? h('p', { class: 'play-meta', text: [a.own ? 'Owner: ' + a.own : '', a.due ? 'due ' + a.due : ''].filter(Boolean).join(' · ') }) : null,
      a.suc ? h('p', { text: 'Success: ' + a.suc }) : null,
      h('p', { class: 'muted', text: 'Expected ARR at risk ' + money(a.risk) + ' · expected ARR to gain ' + money(a.gain) + '.' }));

    root.replaceChildren(...[back, head, facts,
      h('div', { class: 'grid g3 mt' },
        prob('Chance of churn', a.pc, a.cb, a.dpc, 'churn', false),
        prob('Chance of expansion', a.pe, a.eb, a.dpe, 'expand', true),
        playbook),
      h('div', { class: 'grid g2 mt' }, qbr, histCard),
      territoryCard(a.id),
      a.wc ? h('div', { class: 'card mt', id: 'what-changed' }, h('h3', { text: 'What changed since the last run' }),
        h('ul', null, a.wc.split(' | ').map((t) => h('li', { text: t })))) : null,
      h('h2', { text: 'Reasons' }),
      h('div', { class: 'grid g2' }, reasonCard('churn', reasons), reasonCard('expand', reasons)),
      h('div', { class: 'card mt', id: 'data-gaps' }, h('h3', { text: 'Data gaps' }),
        a.gap ? h('ul', null, a.gap.split('; ').map((t) => h('li', { text: t })))
          : h('div', { class: 'empty', text: 'No missing data among what the models use.' }))].filter(Boolean));
  }

  function territoryCard(id) {  // the account's move from a rebalancing (report/territories.py)
    const m = D.territory && Object.prototype.hasOwnProperty.call(D.territory, id) ? D.territory[id] : null;
    if (!m) return null;
    const pool = covLabel(D.vocab.coverage_levels[0]).toLowerCase() + ' pool';  // no CSM: lightest touch
    return h('div', { class: 'card mt', id: 'territory-move' }, h('h3', { text: 'Territory: ' + m.kind }),
      h('div', { class: 'name', text: (m.from || 'no CSM') + ' → ' + (m.to || pool) + (m.tier ? ' · ' + m.tier : '') }),
      h('p', { text: m.reason }), m.risk ? h('p', { class: 'muted', text: m.risk }) : null,
      m.wave ? h('p', { class: 'muted', text: 'Wave ' + m.wave + ' · ' + m.date }) : null);
  }

  function selectNode(node) {
    const range = document.createRange();
    range.selectNodeContents(node);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }

  // ------------------------------------------------------------------ start
  async function start() {
    D = await loadData();
    state.shown = D.page_size;
    build();
    setupList();
    window.addEventListener('hashchange', route);
    route();
    document.documentElement.setAttribute('data-ready', '1');
    return { accounts: A.length };
  }

  window.nrrReport = {
    ready: start().catch((err) => {
      const box = $('app-error');
      box.hidden = false;
      box.textContent = 'The interactive part of this report could not start: ' + err;
      throw err;
    }),
  };
})();
