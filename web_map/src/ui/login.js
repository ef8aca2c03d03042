// Sign-in for staff (POST /api/auth/login sets an HttpOnly session cookie). Sensitive layers,
// camera snapshots, alerts and imports need a role once the server enforces its policy.

import { early, getJSON, sendJSON } from '../api.js';
import { t, valueLabel } from '../i18n.js';
import { el } from '../util.js';

/** Ask the server who we are (null when signed out or when there is no auth router). */
export async function loadUser(app) {
  const { caps } = app.state;
  if (!caps || !caps.paths['/api/auth/me']) return null;
  try {
    // asked for by main.js with the catalog, the first time
    app.state.user = await (early(app, '/api/auth/me') || getJSON('/api/auth/me'));
  } catch {
    app.state.user = null;
  }
  return app.state.user;
}

/** Draw the header button (sign in, or the signed-in user with sign out). */
export function renderLogin(app) {
  const btn = document.getElementById('login-btn');
  if (!btn) return;
  const { caps, user } = app.state;
  btn.hidden = !caps || !caps.paths['/api/auth/login'];
  // the role is what a leader needs to see; the account name is in the tooltip (the KPI strip
  // needs the width on a laptop)
  btn.textContent = user ? valueLabel(user.role) : t('auth.sign_in');
  btn.dataset.user = user ? user.username : '';
  btn.title = user ? user.username : t('auth.sign_in');
  // signed in: a menu with a plain "Sign out" entry (ui/userMenu.js)
  btn.onclick = () => (user ? import('./userMenu.js').then((m) => m.openUserMenu(app, btn)) : openDialog());
}

function openDialog() {
  document.getElementById('login-dialog')?.remove();
  const msg = el('p', { class: 'warn', hidden: true });
  const user = el('input', { type: 'text', id: 'login-user', autocomplete: 'username', required: true });
  const pass = el('input', { type: 'password', id: 'login-pass', autocomplete: 'current-password', required: true });
  const dialog = el(
    'div',
    { id: 'login-dialog', class: 'modal', role: 'dialog', 'aria-modal': 'true' },
    el(
      'form',
      {
        class: 'imp-card modal-card',
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            await sendJSON('/api/auth/login', { username: user.value, password: pass.value });
            location.reload();
          } catch {
            msg.hidden = false;
            msg.textContent = t('auth.failed');
          }
        },
      },
      el('h2', {}, t('auth.sign_in')),
      el('label', {}, t('auth.username'), user),
      el('label', {}, t('auth.password'), pass),
      msg,
      el('div', { class: 'row' }, el('button', { class: 'btn primary', type: 'submit' }, t('auth.sign_in')), el('button', { class: 'btn ghost', type: 'button', onclick: () => dialog.remove() }, t('panel.close'))),
    ),
  );
  document.body.append(dialog);
  user.focus();
}
