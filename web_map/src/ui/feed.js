// placeholder, replaced below
export function initFeed() {}
export function renderFeed() {}
