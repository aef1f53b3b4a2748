// bnscope's TensorBoard tab: layer × step heatmaps, findings, two runs side
// by side, and a layer's series on click.
//
// Hand-written ES module, no build step. TensorBoard loads it inside an
// iframe (`/data/plugin_entry.html?name=bnscope`, whose <base> is
// `/data/plugin/bnscope/`), imports it and calls `render()`. All data comes
// from the plugin's own routes, relative to that base: `runs`, `run`,
// `series`, `align`.
//
// Test hooks: `document.body.dataset.state` becomes "ready" (or "error")
// once everything is drawn; `window.bnscope` exposes the timings and state.

const STAT_FOR_RULE = {
  vanishing_gradient: 'grad_norm',
  exploding_gradient: 'grad_norm',
  nonfinite: 'grad_norm',
  bias_before_bn: 'grad_norm',
  dead_relu: 'act_dead_frac',
  saturation: 'act_saturated_frac',
  unnormalized_input: 'act_std',
  bn_stat_drift: 'bn_mean_shift',
  small_batch_bn: 'bn_mean_shift',
  bn_ema_not_converged: 'bn_mean_shift',
  bn_train_inference_gap: 'bn_gap',
  bn_mode_override: 'bn_gap',
  dropout_before_bn: 'bn_gap',
};
const ROW_HEIGHT = 14; // px per layer row, labels and cells alike
const MAX_CELL = 24; // px, widest step column
const SEVERITY_LABEL = {error: 'ERROR', warning: 'WARN', info: 'INFO'};
const SIDES = ['a', 'b'];

// Viridis, 9 stops; interpolated to a 256-entry lookup table.
const VIRIDIS = [
  [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
  [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37],
];
const LUT = (() => {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * (VIRIDIS.length - 1);
    const k = Math.min(Math.floor(x), VIRIDIS.length - 2);
    const f = x - k;
    for (let c = 0; c < 3; c++) {
      lut[3 * i + c] = VIRIDIS[k][c] + f * (VIRIDIS[k + 1][c] - VIRIDIS[k][c]);
    }
  }
  return lut;
})();
const ZERO_RGB = [25, 25, 25]; // exact 0 on a log scale
const NONFINITE_RGB = [255, 0, 200]; // NaN / Inf
const NODATA_RGB = [236, 236, 236]; // no value at this step
const CHART_COLORS = {a: '#1f77b4', b: '#e8710a'};

const state = {
  runs: [],
  data: {a: null, b: null}, // /run payloads
  names: {a: null, b: null},
  stat: 'grad_norm',
  match: 'depth',
  rows: [], // [[indexA|null, indexB|null], ...] in display order
  highlight: null, // {side, layer, step, last_step}
  selectedRow: null,
  timings: {},
};
const els = {};

export async function render() {
  const t0 = performance.now();
  window.bnscope = {state, timings: state.timings};
  document.body.dataset.state = 'loading';
  const link = el('link', {rel: 'stylesheet', href: './style.css'});
  document.head.appendChild(link);
  const cssLoaded = new Promise((resolve) => {
    link.onload = resolve;
    link.onerror = resolve;
  });
  buildSkeleton();
  try {
    const t1 = performance.now();
    const listing = await getJSON('./runs');
    state.timings.runs_ms = performance.now() - t1;
    state.runs = listing.runs;
    if (!state.runs.length) {
      els.main.appendChild(el('p', {class: 'bn-empty'}, 'No bnscope runs in this logdir.'));
      document.body.dataset.state = 'ready';
      return;
    }
    fillRunSelectors();
    await cssLoaded;
    await loadAndDraw();
    state.timings.first_render_ms = performance.now() - t0;
  } catch (error) {
    showError(error);
  }
}

// -- Data -------------------------------------------------------------------------

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(`${url}: ${response.status} ${await response.text()}`);
  }
  return response.json();
}

async function loadRun(name) {
  const t = performance.now();
  const data = await getJSON('./run?' + new URLSearchParams({run: name}));
  state.timings[`fetch_${name}_ms`] = performance.now() - t;
  for (const stat of Object.values(data.stats)) {
    stat.rows = stat.rows.map((row) => (row === null ? null : decodeRow(row)));
  }
  data.layerIndex = new Map(data.layer_info.map((layer, i) => [layer.name, i]));
  return data;
}

// JSON has no NaN: the server sends "nan"/"inf"/"-inf" strings and null for
// "no value at this step". Rows become Float64Array with NaN for "no value"
// and a parallel list of non-finite cells.
function decodeRow(row) {
  const values = new Float64Array(row.length);
  let special = null;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (typeof v === 'number') {
      values[i] = v;
    } else if (v === null) {
      values[i] = NaN;
    } else {
      values[i] = v === 'inf' ? Infinity : v === '-inf' ? -Infinity : NaN;
      (special ??= new Set()).add(i);
    }
  }
  return {values, special};
}

async function loadAndDraw() {
  const t = performance.now();
  document.body.dataset.state = 'loading';
  const wanted = {a: els.selA.value || null, b: els.selB.value || null};
  const tFetch = performance.now();
  const [a, b] = await Promise.all(
    SIDES.map((side) => (wanted[side] ? loadRun(wanted[side]) : null))
  );
  state.timings.fetch_ms = performance.now() - tFetch;
  state.data = {a, b};
  state.names = wanted;
  state.highlight = null;
  state.selectedRow = null;
  els.chart.hidden = true;
  await computeRows();
  const tDraw = performance.now();
  drawAll();
  await nextPaint();
  state.timings.draw_ms = performance.now() - tDraw;
  state.timings.load_and_draw_ms = performance.now() - t;
  document.body.dataset.state = 'ready';
}

async function computeRows() {
  const {a, b} = state.data;
  const n = (d) => (d ? d.layer_info.length : 0);
  if (a && b && state.match === 'class') {
    const result = await getJSON(
      './align?' + new URLSearchParams({a: state.names.a, b: state.names.b})
    );
    state.rows = result.pairs;
    return;
  }
  const count = Math.max(n(a), n(b));
  state.rows = Array.from({length: count}, (_, i) => [
    i < n(a) ? i : null,
    i < n(b) ? i : null,
  ]);
}

// -- Skeleton -------------------------------------------------------------------------

function buildSkeleton() {
  document.body.classList.add('bn-body');
  els.selA = el('select', {id: 'bn-run-a', 'aria-label': 'run A'});
  els.selB = el('select', {id: 'bn-run-b', 'aria-label': 'run B'});
  els.match = el('select', {id: 'bn-match'}, [
    el('option', {value: 'depth'}, 'by depth'),
    el('option', {value: 'class'}, 'by class sequence (bnscope compare)'),
  ]);
  els.reload = el('button', {id: 'bn-reload', type: 'button', title: 'Read the runs again'}, 'Reload');
  els.statTabs = el('div', {class: 'bn-stat-tabs', role: 'tablist'});
  els.legend = el('div', {class: 'bn-legend'});
  els.toolbar = el('header', {class: 'bn-toolbar'}, [
    el('div', {class: 'bn-controls'}, [
      el('span', {class: 'bn-title'}, 'bnscope'),
      el('label', {}, ['run ', els.selA]),
      el('label', {}, ['compare with ', els.selB]),
      el('label', {}, ['rows ', els.match]),
      els.reload,
    ]),
    el('div', {class: 'bn-controls'}, [els.statTabs, els.legend]),
  ]);
  els.main = el('main', {class: 'bn-main'});
  els.tooltip = el('div', {class: 'bn-tooltip', id: 'bn-tooltip', hidden: ''});
  els.chartBody = el('div', {class: 'bn-chart-body'});
  els.chartTitle = el('span', {class: 'bn-chart-title'});
  els.chart = el('section', {class: 'bn-chart', id: 'bn-chart', hidden: ''}, [
    el('div', {class: 'bn-chart-head'}, [
      els.chartTitle,
      el('button', {type: 'button', class: 'bn-close', onclick: () => (els.chart.hidden = true)}, '×'),
    ]),
    els.chartBody,
  ]);
  document.body.append(els.toolbar, els.main, els.tooltip, els.chart);
  els.selA.onchange = els.selB.onchange = () => loadAndDraw().catch(showError);
  els.match.onchange = async () => {
    document.body.dataset.state = 'loading';
    try {
      state.match = els.match.value;
      await computeRows();
      drawAll();
      document.body.dataset.state = 'ready';
    } catch (error) {
      showError(error);
    }
  };
  els.reload.onclick = async () => {
    try {
      const listing = await getJSON('./runs');
      state.runs = listing.runs;
      fillRunSelectors();
      await loadAndDraw();
    } catch (error) {
      showError(error);
    }
  };
  window.addEventListener('resize', debounce(() => state.data.a && drawAll(), 150));
}

function fillRunSelectors() {
  const keepA = els.selA.value;
  const keepB = els.selB.value;
  const names = state.runs.map((r) => r.name);
  const option = (name) => el('option', {value: name}, name);
  els.selA.replaceChildren(...names.map(option));
  els.selB.replaceChildren(el('option', {value: ''}, '— none —'), ...names.map(option));
  // Default: the first two runs side by side, the one with findings first
  // when we know (a sick-vs-healthy pair reads left to right).
  els.selA.value = names.includes(keepA) ? keepA : names[0];
  els.selB.value = names.includes(keepB) ? keepB : names.length > 1 ? names[1] : '';
  if (!keepA && names.length === 2) {
    const sick = names.find((n) => /sick|plain|no[_-]?bn|without/i.test(n));
    if (sick) {
      els.selA.value = sick;
      els.selB.value = names.find((n) => n !== sick);
    }
  }
}

// -- Drawing --------------------------------------------------------------------------

// Layout (runs, row matching or width changed): panes, findings, row labels
// and canvases. Paint (statistic changed): colours only.
function drawAll() {
  const sides = SIDES.filter((side) => state.data[side]);
  const {a} = state.data;
  if (!a) return;
  const t = performance.now();
  drawStatTabs();
  document.documentElement.style.setProperty('--bn-toolbar-height', `${els.toolbar.offsetHeight}px`);
  const panes = el('div', {class: `bn-panes bn-panes-${sides.length}`});
  // Three aligned bands, so that row i of A and row i of B share one y.
  for (const side of sides) panes.appendChild(paneHeader(side));
  for (const side of sides) panes.appendChild(findingsList(side));
  const cellWidth = chooseCellWidth(sides);
  views = {};
  for (const side of sides) panes.appendChild(heatmapLayout(side, cellWidth));
  els.main.replaceChildren(panes);
  state.timings.last_layout_ms = performance.now() - t;
  paint();
}

let views = {}; // side -> {canvas, overlay, rows: [element|null], axisLabel, cellWidth}

function paint() {
  const t = performance.now();
  const sides = Object.keys(views);
  for (const button of els.statTabs.children) {
    button.classList.toggle('bn-active', button.dataset.stat === state.stat);
  }
  const scale = colourScale(sides);
  drawLegend(scale);
  for (const side of sides) paintHeatmap(side, scale);
  applyHighlight(false);
  state.timings.last_paint_ms = performance.now() - t;
}

function setStat(name) {
  if (name === state.stat || !state.data.a.stats[name]) return;
  state.stat = name;
  paint();
}

function drawStatTabs() {
  const stats = state.data.a.stats;
  els.statTabs.replaceChildren(
    ...Object.entries(stats).map(([name, stat]) => {
      const present = SIDES.reduce((n, s) => n + (state.data[s]?.stats[name]?.present || 0), 0);
      return el(
        'button',
        {
          type: 'button',
          role: 'tab',
          class: 'bn-stat' + (name === state.stat ? ' bn-active' : '') + (present ? '' : ' bn-empty-stat'),
          'data-stat': name,
          title: `${name}: ${stat.description} (${stat.scale} colour scale)${present ? '' : ' No layer records it.'}`,
          onclick: () => setStat(name),
        },
        stat.label
      );
    })
  );
}

function paneHeader(side) {
  const data = state.data[side];
  const counts = data.counts;
  const verdict = counts.error
    ? ['bn-v-error', `✗ ${plural(counts.error, 'error')}`]
    : counts.warning
    ? ['bn-v-warning', `! ${plural(counts.warning, 'warning')}`]
    : counts.info
    ? ['bn-v-info', `i ${plural(counts.info, 'note')}`]
    : ['bn-v-ok', '✓ healthy'];
  const steps = data.steps ? `steps ${data.steps[0]}–${data.steps[1]}` : 'no steps';
  const model = data.model ? `model ${data.model}${data.model_class ? ` (${data.model_class})` : ''} · ` : '';
  return el('div', {class: 'bn-pane-head', 'data-side': side, 'data-run': data.name}, [
    el('h2', {}, [
      el('span', {class: 'bn-side'}, side.toUpperCase()),
      el('span', {class: 'bn-run-name'}, data.name),
      el('span', {class: `bn-verdict ${verdict[0]}`}, verdict[1]),
    ]),
    el('div', {class: 'bn-meta'}, `${model}${steps} · ${data.probes} probes · ${data.layers} layers`),
    ...data.notes.map((note) => el('div', {class: 'bn-note'}, note)),
    // The findings summary written at the end of a fit (bnscope/findings),
    // shown as the text it is: the list below is computed live from the data.
    data.findings_markdown
      ? el('details', {class: 'bn-findings-text', 'data-side': side}, [
          el('summary', {}, 'Findings written at the end of training (bnscope/findings)'),
          el('pre', {}, data.findings_markdown),
        ])
      : null,
  ]);
}

function findingsList(side) {
  const data = state.data[side];
  const list = el('ol', {class: 'bn-findings', 'data-side': side});
  if (!data.findings.length) {
    list.appendChild(el('li', {class: 'bn-none'}, 'No findings: nothing looks wrong.'));
  }
  data.findings.forEach((f, index) => {
    const hasRow = f.layer !== null && data.layerIndex.has(f.layer);
    const steps = f.step === null ? '' : f.step === f.last_step ? `${f.step}` : `${f.step}–${f.last_step}`;
    const evidence = [];
    if (f.value !== null) evidence.push(`value ${fmtReport(f.value)}`);
    if (f.threshold !== null) evidence.push(`limit ${fmtReport(f.threshold)}`);
    const item = el(
      'li',
      {
        class: `bn-finding bn-sev-${f.severity}` + (hasRow ? ' bn-linked' : ''),
        'data-index': index,
        'data-rule': f.rule,
        'data-severity': f.severity,
        'data-layer': f.layer ?? '',
        'data-step': f.step ?? '',
        'data-last-step': f.last_step ?? '',
        title: hasRow ? 'Show this layer and these steps in the heatmap' : '',
      },
      [
        el('span', {class: 'bn-sev'}, SEVERITY_LABEL[f.severity] || f.severity),
        el('span', {class: 'bn-rule'}, f.rule),
        el('span', {class: 'bn-steps'}, steps),
        el('span', {class: 'bn-layer'}, f.layer ?? 'model'),
        el('div', {class: 'bn-message'}, f.message),
        evidence.length ? el('div', {class: 'bn-evidence'}, evidence.join(' · ')) : null,
        f.hint ? el('div', {class: 'bn-hint'}, '→ ' + f.hint) : null,
      ]
    );
    if (hasRow) {
      item.onclick = () => {
        state.highlight = {side, layer: f.layer, step: f.step, last_step: f.last_step, index};
        const stat = STAT_FOR_RULE[f.rule];
        if (stat) setStat(stat);
        applyHighlight(true);
      };
    }
    list.appendChild(item);
  });
  return list;
}

function chooseCellWidth(sides) {
  const paneWidth = (els.main.clientWidth || window.innerWidth) / sides.length - 24;
  const labelWidth = 250;
  const steps = Math.max(...sides.map((s) => state.data[s].probe_steps.length), 1);
  return Math.max(2, Math.min(MAX_CELL, Math.floor((paneWidth - labelWidth) / steps)));
}

function heatmapLayout(side, cellWidth) {
  const data = state.data[side];
  const steps = data.probe_steps;
  const nRows = state.rows.length;
  const width = Math.max(1, steps.length * cellWidth);
  const height = Math.max(1, nRows * ROW_HEIGHT);
  const k = side === 'a' ? 0 : 1;

  const labels = el('div', {class: 'bn-labels'});
  const fragment = document.createDocumentFragment();
  const rowElements = [];
  state.rows.forEach((pair, rowIndex) => {
    const index = pair[k];
    if (index === null) {
      fragment.appendChild(el('div', {class: 'bn-row bn-gap', 'data-row': rowIndex}));
      rowElements.push(null);
      return;
    }
    const layer = data.layer_info[index];
    const kind = describeLayer(layer);
    const row = el(
      'div',
      {
        class: 'bn-row' + (state.selectedRow === rowIndex ? ' bn-selected' : ''),
        'data-row': rowIndex,
        'data-layer': layer.name,
        'data-depth': layer.depth,
        title: `${layer.name} · depth ${layer.depth}${kind ? ' · ' + kind : ''}${layer.params != null ? ` · ${layer.params} params` : ''}`,
      },
      [
        el('span', {class: 'bn-depth'}, String(layer.depth)),
        el('span', {class: 'bn-name'}, layer.name),
        el('span', {class: 'bn-kind'}, kind),
      ]
    );
    fragment.appendChild(row);
    rowElements.push(row);
  });
  labels.appendChild(fragment);
  labels.onclick = (event) => {
    const row = event.target.closest('.bn-row');
    if (row && !row.classList.contains('bn-gap')) selectRow(Number(row.dataset.row));
  };

  const canvas = el('canvas', {class: 'bn-cells', 'data-side': side, width, height});
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  // The overlay takes the mouse and holds the finding's mark: a div, not a
  // second canvas of the heatmap's size.
  const mark = el('div', {class: 'bn-mark', hidden: ''});
  const overlay = el('div', {class: 'bn-overlay', 'data-side': side, style: `width:${width}px;height:${height}px`}, [mark]);
  const cells = el('div', {class: 'bn-cells-wrap', style: `width:${width}px;height:${height}px`}, [canvas, overlay]);
  overlay.onmousemove = (event) => hover(event, side, cellWidth);
  overlay.onmouseleave = () => (els.tooltip.hidden = true);
  overlay.onclick = (event) => {
    const rowIndex = Math.floor(event.offsetY / ROW_HEIGHT);
    if (state.rows[rowIndex] && state.rows[rowIndex][k] !== null) selectRow(rowIndex);
  };
  const axisLabel = el('div', {class: 'bn-axis-label'});
  const root = el('div', {class: 'bn-heatmap', 'data-side': side}, [
    el('div', {class: 'bn-axis-row'}, [axisLabel, stepAxis(steps, cellWidth)]),
    el('div', {class: 'bn-grid'}, [labels, cells]),
  ]);
  views[side] = {root, canvas, overlay, mark, rows: rowElements, axisLabel, cellWidth};
  return root;
}

// Cells: one pixel per (step, row) in an offscreen image, scaled up without
// smoothing: one putImageData and one drawImage per heatmap.
function paintHeatmap(side, scale) {
  const view = views[side];
  const data = state.data[side];
  const stat = data.stats[state.stat];
  const steps = data.probe_steps.length;
  const k = side === 'a' ? 0 : 1;
  view.root.dataset.stat = state.stat;
  view.axisLabel.textContent = `${stat.label} · step →`;
  const image = new ImageData(Math.max(1, steps), Math.max(1, state.rows.length));
  const px = image.data;
  state.rows.forEach((pair, rowIndex) => {
    const index = pair[k];
    const element = view.rows[rowIndex];
    if (index === null) return;
    const row = stat.rows[index];
    element.classList.toggle('bn-nodata', !row);
    let o = 4 * rowIndex * steps;
    for (let c = 0; c < steps; c++, o += 4) {
      const rgb = row ? cellColour(row, c, scale) : NODATA_RGB;
      px[o] = rgb[0];
      px[o + 1] = rgb[1];
      px[o + 2] = rgb[2];
      px[o + 3] = 255;
    }
  });
  const small = document.createElement('canvas');
  small.width = image.width;
  small.height = image.height;
  small.getContext('2d').putImageData(image, 0, 0);
  const ctx = view.canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, view.canvas.width, view.canvas.height);
  ctx.drawImage(small, 0, 0, view.canvas.width, view.canvas.height);
}

function stepAxis(steps, cellWidth) {
  const width = Math.max(1, steps.length * cellWidth);
  const axis = el('canvas', {class: 'bn-axis', width, height: 16});
  axis.style.width = `${width}px`;
  const ctx = axis.getContext('2d');
  ctx.font = '10px Roboto, sans-serif';
  ctx.fillStyle = '#555';
  ctx.textBaseline = 'top';
  const every = Math.max(1, Math.ceil(48 / cellWidth));
  let lastRight = -Infinity;
  for (let c = 0; c < steps.length; c += every) {
    const text = String(steps[c]);
    const x = c * cellWidth;
    const w = ctx.measureText(text).width;
    if (x < lastRight + 6 || x + w > width) continue;
    ctx.fillRect(x, 0, 1, 4);
    ctx.fillText(text, x + 2, 4);
    lastRight = x + w;
  }
  return axis;
}

function describeLayer(layer) {
  const parts = [];
  if (layer.class) parts.push(layer.class.replace('Normalization', 'Norm'));
  if (layer.activation && layer.activation !== 'linear' && !(layer.class || '').toLowerCase().includes(layer.activation)) {
    parts.push(layer.activation);
  }
  if (layer.norm === 'batch' && layer.training_mode === false) parts.push('frozen');
  return parts.join(' · ');
}

// -- Colour ----------------------------------------------------------------------------

function colourScale(sides) {
  const name = state.stat;
  const kind = state.data.a.stats[name].scale;
  let lo = Infinity;
  let hi = -Infinity;
  for (const side of sides) {
    const stat = state.data[side].stats[name];
    if (!stat) continue;
    for (const row of stat.rows) {
      if (!row) continue;
      for (const v of row.values) {
        if (!Number.isFinite(v) || (kind === 'log' && v <= 0)) continue;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  }
  if (kind === 'linear') {
    // Fractions: a fixed 0–1 scale, so that 80% dead reads the same anywhere.
    return {kind, lo: 0, hi: Math.max(1, Number.isFinite(hi) ? hi : 1)};
  }
  if (!Number.isFinite(lo)) return {kind, lo: 1e-3, hi: 1, logLo: -3, logHi: 0};
  let logLo = Math.log10(lo);
  let logHi = Math.log10(hi);
  if (logHi - logLo < 1e-9) {
    logLo -= 0.5;
    logHi += 0.5;
  }
  return {kind, lo, hi, logLo, logHi};
}

function position(v, scale) {
  if (scale.kind === 'log') return (Math.log10(v) - scale.logLo) / (scale.logHi - scale.logLo);
  return (v - scale.lo) / (scale.hi - scale.lo);
}

function cellColour(row, c, scale) {
  const v = row.values[c];
  if (row.special && row.special.has(c)) return NONFINITE_RGB;
  if (Number.isNaN(v)) return NODATA_RGB;
  if (scale.kind === 'log' && v <= 0) return ZERO_RGB;
  const i = Math.round(255 * Math.min(1, Math.max(0, position(v, scale))));
  return [LUT[3 * i], LUT[3 * i + 1], LUT[3 * i + 2]];
}

function drawLegend(scale) {
  const bar = el('canvas', {class: 'bn-legend-bar', width: 160, height: 10});
  const ctx = bar.getContext('2d');
  for (let x = 0; x < 160; x++) {
    const i = Math.round((255 * x) / 159);
    ctx.fillStyle = `rgb(${LUT[3 * i]},${LUT[3 * i + 1]},${LUT[3 * i + 2]})`;
    ctx.fillRect(x, 0, 1, 10);
  }
  const swatch = (rgb, text) =>
    el('span', {class: 'bn-swatch'}, [el('i', {style: `background:rgb(${rgb.join(',')})`}), text]);
  els.legend.replaceChildren(
    el('span', {class: 'bn-legend-lo'}, fmt(scale.kind === 'log' ? scale.lo : scale.lo)),
    bar,
    el('span', {class: 'bn-legend-hi'}, fmt(scale.hi)),
    el('span', {class: 'bn-legend-kind'}, scale.kind === 'log' ? 'log scale' : 'linear'),
    scale.kind === 'log' ? swatch(ZERO_RGB, '0') : null,
    swatch(NONFINITE_RGB, 'NaN/Inf'),
    swatch(NODATA_RGB, 'no data')
  );
}

// -- Interaction ----------------------------------------------------------------------

function hover(event, side, cellWidth) {
  const data = state.data[side];
  const rowIndex = Math.floor(event.offsetY / ROW_HEIGHT);
  const column = Math.floor(event.offsetX / cellWidth);
  const pair = state.rows[rowIndex];
  const index = pair ? pair[side === 'a' ? 0 : 1] : null;
  if (index === null || index === undefined || column < 0 || column >= data.probe_steps.length) {
    els.tooltip.hidden = true;
    return;
  }
  const layer = data.layer_info[index];
  const stat = data.stats[state.stat];
  const row = stat.rows[index];
  let value = 'no data';
  let raw = '';
  if (row) {
    const v = row.values[column];
    if (row.special && row.special.has(column)) value = raw = String(v);
    else if (!Number.isNaN(v)) {
      value = fmtExact(v);
      raw = String(v);
    }
  }
  const kind = describeLayer(layer);
  els.tooltip.replaceChildren(
    el('div', {class: 'bn-tip-layer'}, `${layer.name}${kind ? ' (' + kind + ')' : ''} · depth ${layer.depth}`),
    el('div', {}, `step ${data.probe_steps[column]}`),
    el('div', {class: 'bn-tip-value'}, `${stat.label}: ${value}`)
  );
  Object.assign(els.tooltip.dataset, {
    layer: layer.name,
    step: data.probe_steps[column],
    stat: state.stat,
    value: raw,
    shown: value,
  });
  els.tooltip.hidden = false;
  const pad = 14;
  const box = els.tooltip.getBoundingClientRect();
  let x = event.clientX + pad;
  let y = event.clientY + pad;
  if (x + box.width > window.innerWidth) x = event.clientX - box.width - pad;
  if (y + box.height > window.innerHeight) y = event.clientY - box.height - pad;
  els.tooltip.style.left = `${x}px`;
  els.tooltip.style.top = `${y}px`;
}

function applyHighlight(scroll) {
  const h = state.highlight;
  document.querySelectorAll('.bn-row.bn-highlight, .bn-finding.bn-current').forEach((e) => e.classList.remove('bn-highlight', 'bn-current'));
  for (const view of Object.values(views)) view.mark.hidden = true;
  if (!h) return;
  const finding = document.querySelector(`.bn-findings[data-side="${h.side}"] .bn-finding[data-index="${h.index}"]`);
  if (finding) finding.classList.add('bn-current');
  const data = state.data[h.side];
  const view = views[h.side];
  if (!view) return;
  const index = data.layerIndex.get(h.layer);
  const rowIndex = state.rows.findIndex((pair) => pair[h.side === 'a' ? 0 : 1] === index);
  if (rowIndex < 0) return;
  const label = view.rows[rowIndex];
  label.classList.add('bn-highlight');
  const steps = data.probe_steps;
  const cellWidth = view.cellWidth;
  let c0 = steps.findIndex((s) => s >= (h.step ?? steps[0]));
  let c1 = steps.length - 1 - [...steps].reverse().findIndex((s) => s <= (h.last_step ?? steps[steps.length - 1]));
  if (c0 < 0) c0 = 0;
  if (c1 >= steps.length || c1 < c0) c1 = steps.length - 1;
  Object.assign(view.mark.style, {
    top: `${rowIndex * ROW_HEIGHT}px`,
    left: `${c0 * cellWidth}px`,
    width: `${(c1 - c0 + 1) * cellWidth}px`,
    height: `${ROW_HEIGHT}px`,
  });
  view.mark.hidden = false;
  Object.assign(view.overlay.dataset, {row: rowIndex, firstColumn: c0, lastColumn: c1});
  if (scroll) label.scrollIntoView({block: 'center', behavior: 'auto'});
}

async function selectRow(rowIndex) {
  state.selectedRow = rowIndex;
  document.querySelectorAll('.bn-row.bn-selected').forEach((e) => e.classList.remove('bn-selected'));
  document.querySelectorAll(`.bn-row[data-row="${rowIndex}"]`).forEach((e) => e.classList.add('bn-selected'));
  const pair = state.rows[rowIndex];
  const wanted = SIDES.map((side, k) => {
    const data = state.data[side];
    const index = pair[k];
    return data && index !== null ? {side, run: data.name, layer: data.layer_info[index]} : null;
  }).filter(Boolean);
  const series = await Promise.all(
    wanted.map((w) => getJSON('./series?' + new URLSearchParams({run: w.run, layer: w.layer.name})))
  );
  els.chartTitle.replaceChildren(
    ...wanted.flatMap((w, k) => [
      el('span', {class: 'bn-chart-key', style: `color:${CHART_COLORS[w.side]}`}, '━ '),
      el('b', {}, w.layer.name),
      ` (${describeLayer(w.layer) || 'layer'}) in ${w.run}`,
      k < wanted.length - 1 ? ' vs ' : '',
    ])
  );
  const stats = state.data.a.stats;
  const charts = Object.entries(stats)
    .map(([name, stat]) => {
      const lines = wanted
        .map((w, k) => ({side: w.side, data: series[k].series[`${name}/${w.layer.name}`]}))
        .filter((line) => line.data);
      if (!lines.length) return null;
      return lineChart(name, stat, lines);
    })
    .filter(Boolean);
  els.chartBody.replaceChildren(...(charts.length ? charts : [el('p', {}, 'No series recorded for this layer.')]));
  els.chart.hidden = false;
  els.chart.dataset.layer = wanted.map((w) => w.layer.name).join(',');
}

function lineChart(name, stat, lines) {
  const W = 300;
  const H = 150;
  const M = {l: 52, r: 8, t: 18, b: 22};
  const log = stat.scale === 'log';
  const canvas = el('canvas', {class: 'bn-line', width: W, height: H, 'data-stat': name, 'data-scale': log ? 'log' : 'linear'});
  const ctx = canvas.getContext('2d');
  const points = lines.map((line) =>
    line.data.steps.map((s, i) => [s, toNumber(line.data.values[i])])
  );
  const all = points.flat();
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]).filter((v) => Number.isFinite(v) && (!log || v > 0));
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs) || 1;
  let y0 = ys.length ? Math.min(...ys) : 0;
  let y1 = ys.length ? Math.max(...ys) : 1;
  if (log) {
    y0 = Math.log10(y0);
    y1 = Math.log10(y1);
  }
  if (y1 - y0 < 1e-12) {
    y0 -= log ? 0.5 : Math.abs(y0) * 0.1 + 0.5;
    y1 += log ? 0.5 : Math.abs(y1) * 0.1 + 0.5;
  }
  const X = (s) => M.l + ((s - x0) / (x1 - x0 || 1)) * (W - M.l - M.r);
  const Y = (v) => H - M.b - (((log ? Math.log10(v) : v) - y0) / (y1 - y0)) * (H - M.t - M.b);
  ctx.font = '10px Roboto, sans-serif';
  ctx.fillStyle = '#333';
  ctx.fillText(`${stat.label}${log ? ' (log)' : ''}`, M.l, 11);
  ctx.strokeStyle = '#bbb';
  ctx.strokeRect(M.l, M.t, W - M.l - M.r, H - M.t - M.b);
  ctx.fillStyle = '#555';
  ctx.textAlign = 'right';
  for (const t of [y0, (y0 + y1) / 2, y1]) {
    const v = log ? 10 ** t : t;
    ctx.fillText(fmt(v), M.l - 4, Y(v) + 3);
  }
  ctx.textAlign = 'left';
  ctx.fillText(String(x0), M.l, H - 6);
  ctx.textAlign = 'right';
  ctx.fillText(String(x1), W - M.r, H - 6);
  lines.forEach((line, k) => {
    ctx.strokeStyle = CHART_COLORS[line.side];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let pen = false;
    for (const [s, v] of points[k]) {
      if (!Number.isFinite(v) || (log && v <= 0)) {
        pen = false;
        ctx.fillStyle = '#ff00c8';
        ctx.fillRect(X(s) - 1.5, M.t, 3, 3); // a tick for NaN/Inf/0 values
        continue;
      }
      if (pen) ctx.lineTo(X(s), Y(v));
      else ctx.moveTo(X(s), Y(v));
      pen = true;
    }
    ctx.stroke();
  });
  canvas.title = `${name}: ` + lines.map((l) => `${l.side.toUpperCase()} last ${fmt(toNumber(l.data.values.at(-1)))}`).join(', ');
  return el('figure', {class: 'bn-figure' + (name === state.stat ? ' bn-active' : '')}, [canvas]);
}

// -- Helpers ------------------------------------------------------------------------------

function toNumber(v) {
  if (typeof v === 'number') return v;
  return v === 'inf' ? Infinity : v === '-inf' ? -Infinity : NaN;
}

// Compact numbers that never hide a small value: 6.2e-9, 0.0412, 1.35, 2.6e+8.
// `digits` significant digits; scientific below 1e-3 and from 1e4 on.
export function fmt(v, digits = 4) {
  if (v === null || v === undefined) return '–';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Inf' : '-Inf';
  if (v === 0) return '0';
  const m = Math.abs(v);
  const fixed = v.toPrecision(digits);
  if (m < 1e-3 || m >= 1e4 || fixed.includes('e')) {
    const [mantissa, exponent] = v.toExponential(digits - 1).split('e');
    return `${trimZeros(mantissa)}e${exponent}`;
  }
  return trimZeros(fixed);
}

// The value as the server sent it (7 significant digits: float32 precision).
export function fmtExact(v) {
  return fmt(v, 7);
}

// `bnscope summarize`'s number format (bnscope.analysis.formatting.format_number),
// so a finding's "value ... · limit ..." reads as in the terminal: Python's
// `.1e` below 1e-3 and from 1e4 on, `.0f` from 100 on, `.3g` otherwise.
export function fmtReport(v) {
  if (v === null || v === undefined) return '–';
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  const m = Math.abs(v);
  if (m !== 0 && (m < 1e-3 || m >= 1e4)) return pyExponent(v.toExponential(1));
  if (m >= 100) return v.toFixed(0);
  return pyG(v, 3);
}

function pyExponent(text) {
  const [mantissa, exponent] = text.split('e');
  const x = parseInt(exponent, 10);
  return `${mantissa}e${x < 0 ? '-' : '+'}${String(Math.abs(x)).padStart(2, '0')}`;
}

function pyG(v, precision) {
  if (v === 0) return '0';
  const x = parseInt(v.toExponential(precision - 1).split('e')[1], 10);
  if (x < -4 || x >= precision) {
    const [mantissa, exponent] = v.toExponential(precision - 1).split('e');
    return pyExponent(`${trimZeros(mantissa)}e${exponent}`);
  }
  return trimZeros(v.toFixed(Math.max(0, precision - 1 - x)));
}

function trimZeros(text) {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function el(tag, attrs = {}, children = null) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key.startsWith('on') && typeof value === 'function') node[key] = value;
    else node.setAttribute(key, value);
  }
  if (children !== null && children !== undefined) {
    for (const child of Array.isArray(children) ? children : [children]) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
  }
  return node;
}

function nextPaint() {
  return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

function showError(error) {
  console.error(error);
  document.body.dataset.state = 'error';
  els.main.replaceChildren(el('pre', {class: 'bn-error'}, String(error && error.stack ? error.stack : error)));
}
