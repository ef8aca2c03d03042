// Saved views per user (GET/POST/PATCH/DELETE /api/views): a name and the page's URL state.
// The list opens a view, re-saves, deletes it; the video wall rotates through them.

import { getJSON, sendJSON } from '../api.js';
import { t } from '../i18n.js';
import { el } from '../util.js';
import { openModal } from './dialog.js';
import { applyState, encodeState } from './urlState.js';

/** The signed-in user's views ([] when signed out). */
export async function listViews(app) {
  if (!app.state.user) return [];
  try {
    return await getJSON('/api/views');
  } catch {
    return [];
  }
}

/** Open a saved view (its state goes through history like any change). */
export async function openView(app, view) {
  history.pushState({ iocmap: true }, '', `${location.pathname}?${view.state}${location.hash}`);
  await applyState(app, `?${view.state}`, { animate: true });
}

/** The views dialog. */
export async function openViews(app) {
  const { body } = openModal({ id: 'views-dialog', title: t('views.title') });
  if (!app.state.user) {
    body.append(el('p', { class: 'muted' }, t('views.sign_in')));
    return;
  }
  const status = el('p', { class: 'muted small', role: 'status' });
  const list = el('ul', { class: 'views-list', id: 'views-list' });
  const name = el('input', { type: 'text', id: 'view-name', maxlength: '120', placeholder: t('views.name') });
  const rotate = el('input', { type: 'number', id: 'view-rotate', min: '5', max: '3600', value: '30', 'aria-label': t('views.rotate') });
  const own = (state) => {
    const p = new URLSearchParams(state);
    p.delete('wall');
    return p.toString();
  };
  const refresh = async () => {
    const views = await listViews(app);
    list.innerHTML = '';
    if (!views.length) list.append(el('li', { class: 'muted' }, t('views.none')));
    for (const v of views) {
      list.append(
        el(
          'li',
          { 'data-view': v.name },
          el('button', { type: 'button', class: 'btn small view-open', onclick: () => openView(app, v) }, v.name),
          el('span', { class: 'muted small' }, t('views.every', { s: v.rotate_s })),
          el(
            'button',
            {
              type: 'button',
              class: 'btn tiny',
              title: t('views.resave'),
              onclick: async () => {
                await sendJSON(`/api/views/${v.id}`, { state: own(encodeState(app)) }, 'PATCH');
                status.textContent = t('views.saved', { name: v.name });
              },
            },
            t('views.resave'),
          ),
          el(
            'button',
            {
              type: 'button',
              class: 'btn tiny',
              'aria-label': `${t('views.delete')} ${v.name}`,
              onclick: async () => {
                await fetch(`/api/views/${v.id}`, { method: 'DELETE' });
                refresh();
              },
            },
            t('views.delete'),
          ),
        ),
      );
    }
  };
  const save = el(
    'form',
    {
      class: 'row wrap',
      onsubmit: async (e) => {
        e.preventDefault();
        if (!name.value.trim()) return;
        try {
          await sendJSON('/api/views', { name: name.value.trim(), state: own(encodeState(app)), rotate_s: Number(rotate.value) || 30 });
          status.textContent = t('views.saved', { name: name.value.trim() });
          name.value = '';
          refresh();
        } catch (err) {
          status.textContent = err.status === 409 ? t('views.exists') : `${t('app.error')}: ${err.message}`;
        }
      },
    },
    name,
    el('label', { class: 'row small' }, t('views.rotate'), rotate),
    el('button', { type: 'submit', class: 'btn primary', id: 'view-save' }, t('views.save')),
  );
  body.append(save, list, status);
  await refresh();
}
