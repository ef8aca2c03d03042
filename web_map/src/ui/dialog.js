// Every dialog of the page closes on Escape and keeps the keyboard focus inside while open.
// Installed once for the whole document, so dialogs other modules build (sign-in, imports,
// report forms) behave the same without each wiring it: a dialog is any visible
// [role="dialog"] / .modal element; the topmost (last in the DOM) one is the active one.

import { el } from '../util.js';

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

// the element that had the focus before each dialog opened
const openers = new WeakMap();
let keysInstalled = false;

/** The dialog that holds the keyboard now, or null. */
export function activeDialog() {
  const all = [...document.querySelectorAll('[role="dialog"], .modal')].filter((d) => !d.hidden && d.isConnected && d.getClientRects().length);
  return all.length ? all[all.length - 1] : null;
}

/** Close a dialog: its own close callback when it has one, else remove it or hide it. */
export function closeDialog(dialog) {
  if (!dialog) return;
  const opener = openers.get(dialog);
  if (typeof dialog.__close === 'function') dialog.__close();
  else if (dialog.dataset.keep === '1') dialog.hidden = true;
  else dialog.remove();
  if (opener && opener.isConnected) opener.focus();
}

/** Install the Escape and Tab handling once. */
export function installDialogKeys() {
  if (keysInstalled) return;
  keysInstalled = true;
  document.addEventListener(
    'keydown',
    (e) => {
      const dialog = activeDialog();
      if (!dialog) return;
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        closeDialog(dialog);
        return;
      }
      if (e.key !== 'Tab') return;
      const items = [...dialog.querySelectorAll(FOCUSABLE)].filter((n) => n.getClientRects().length);
      if (!items.length) {
        e.preventDefault();
        return;
      }
      const first = items[0];
      const last = items[items.length - 1];
      const inside = dialog.contains(document.activeElement);
      if (e.shiftKey && (document.activeElement === first || !inside)) {
        e.preventDefault();
        /** @type {HTMLElement} */ (last).focus();
      } else if (!e.shiftKey && (document.activeElement === last || !inside)) {
        e.preventDefault();
        /** @type {HTMLElement} */ (first).focus();
      }
    },
    true,
  );
  // a dialog that appears takes the focus (unless its builder already placed it inside)
  new MutationObserver(() => {
    const dialog = activeDialog();
    if (dialog && !dialog.contains(document.activeElement)) {
      if (!openers.has(dialog)) openers.set(dialog, document.activeElement);
      const first = dialog.querySelector('[autofocus]') || dialog.querySelector(FOCUSABLE);
      if (first) /** @type {HTMLElement} */ (first).focus();
    }
  }).observe(document.body, { childList: true, subtree: false });
}

/**
 * A modal dialog with a title, a body and a close button; returns {dialog, body, close}.
 * `onClose` runs when it closes (Escape, the button or a click outside).
 */
/** @param {{id?: string, title?: string, wide?: boolean, onClose?: () => void}} [opts] */
export function openModal({ id, title, wide = false, onClose } = {}) {
  document.getElementById(id)?.remove();
  const opener = document.activeElement;
  const body = el('div', { class: 'modal-body' });
  const closeBtn = el('button', { class: 'btn ghost modal-x', type: 'button', 'aria-label': '×' }, '×');
  const card = el('div', { class: `imp-card modal-card${wide ? ' wide' : ''}` }, el('div', { class: 'row between' }, el('h2', {}, title), closeBtn), body);
  const dialog = el('div', { id, class: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-label': title }, card);
  const close = () => {
    dialog.remove();
    if (onClose) onClose();
    if (opener && opener.isConnected) /** @type {HTMLElement} */ (opener).focus();
  };
  dialog.__close = close;
  closeBtn.addEventListener('click', close);
  dialog.addEventListener('mousedown', (e) => {
    if (e.target === dialog) close();
  });
  document.body.append(dialog);
  return { dialog, body, close };
}
