// The signed-in user's menu in the header: who is signed in, saved views and a plain
// "Sign out" entry (menu semantics, arrow keys, Escape closes).

import { sendJSON } from '../api.js';
import { t, valueLabel } from '../i18n.js';
import { el } from '../util.js';

/** Close the menu if open. */
export function closeUserMenu() {
  const m = document.getElementById('user-menu');
  if (!m) return false;
  m.remove();
  document.getElementById('login-btn')?.setAttribute('aria-expanded', 'false');
  return true;
}

/** Open the menu under the header button. */
export function openUserMenu(app, btn) {
  if (closeUserMenu()) return;
  const user = app.state.user;
  const item = (id, label, fn) => el('button', { type: 'button', role: 'menuitem', id, class: 'menu-item', tabindex: '-1', onclick: () => { closeUserMenu(); fn(); } }, label);
  const signOut = async () => {
    try {
      await sendJSON('/api/auth/logout', {});
    } finally {
      location.reload();
    }
  };
  const menu = el(
    'div',
    { id: 'user-menu', class: 'panel user-menu', role: 'menu', 'aria-label': t('menu.user') },
    el('div', { class: 'menu-head' }, el('strong', {}, user.username), el('div', { class: 'muted small' }, valueLabel(user.role))),
    item('menu-views', t('views.title'), () => import('./views.js').then((m) => m.openViews(app))),
    item('menu-signout', t('auth.sign_out'), signOut),
  );
  const r = btn.getBoundingClientRect();
  menu.style.top = `${r.bottom + 4}px`;
  menu.style.right = `${Math.max(8, window.innerWidth - r.right)}px`;
  document.body.append(menu);
  btn.setAttribute('aria-haspopup', 'menu');
  btn.setAttribute('aria-expanded', 'true');
  const items = [...menu.querySelectorAll('[role="menuitem"]')];
  items[0].focus();
  menu.addEventListener('keydown', (e) => {
    const i = items.indexOf(document.activeElement);
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      items[(i + (e.key === 'ArrowDown' ? 1 : -1) + items.length) % items.length].focus();
    } else if (e.key === 'Escape' || e.key === 'Tab') {
      e.preventDefault();
      closeUserMenu();
      btn.focus();
    }
  });
  setTimeout(() => {
    const away = (e) => {
      if (!menu.contains(e.target) && e.target !== btn) {
        closeUserMenu();
        document.removeEventListener('pointerdown', away, true);
      }
    };
    document.addEventListener('pointerdown', away, true);
  });
}
