// placeholder, replaced below
export function renderImportPage() {}
