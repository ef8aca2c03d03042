// Every user-visible string of the web map lives here: Vietnamese first, English second.
// Keys missing in English fall back to Vietnamese, keys missing in both show the key itself.

export const STRINGS = {
  vi: {
    'app.title': 'Bản đồ điều hành IOC — Nghệ An',
    'app.subtitle': 'Trung tâm Giám sát, điều hành đô thị thông minh',
    'app.loading': 'Đang tải bản đồ…',
    'app.error': 'Không tải được dữ liệu',
    'app.offline_note': 'Bản đồ nền: ranh giới tỉnh và xã/phường (ngoại tuyến)',
    'lang.switch': 'EN',
    'lang.switch_title': 'Switch to English',

    'nav.map': 'Bản đồ',
    'nav.import': 'Nhập dữ liệu',

    'panel.layers': 'Lớp dữ liệu',
    'panel.details': 'Thông tin chi tiết',
    'panel.close': 'Đóng',
    'panel.feed': 'Cảnh báo & sự kiện',
    'panel.query': 'Truy vấn không gian',

    'layer.features': 'đối tượng',
    'layer.zoom_in': 'Phóng to (≥ {z}) để xem',
    'layer.opacity': 'Độ mờ',
    'layer.synthetic': 'mô phỏng',
    'layer.h3': 'Xem lưới H3',
    'layer.loading': 'đang tải…',
    'layer.tiles': 'MVT',
    'layer.geojson': 'GeoJSON',

    'sector.admin': 'Hành chính',
    'sector.health': 'Y tế',
    'sector.education': 'Giáo dục',
    'sector.tourism': 'Du lịch',
    'sector.land': 'Đất đai',
    'sector.security': 'An ninh trật tự',
    'sector.traffic': 'Giao thông',
    'sector.feedback': 'Phản ánh hiện trường',
    'sector.environment': 'Môi trường',
    'sector.other': 'Khác',

    'view.vector': 'Đối tượng',
    'view.h3': 'Lưới H3',
    'view.heatmap': 'Bản đồ nhiệt',
    'h3.layer': 'Lớp tổng hợp',
    'h3.resolution': 'Độ phân giải H3',
    'h3.count': 'Số lượng',
    'h3.legend': 'Mật độ theo ô lục giác',
    'h3.source_server': 'tổng hợp từ máy chủ',
    'h3.source_client': 'tổng hợp tại trình duyệt',

    'time.title': 'Thời gian',
    'time.play': 'Phát',
    'time.pause': 'Dừng',
    'time.window': 'Cửa sổ',
    'time.all': 'Tất cả',
    'time.days': '{n} ngày',

    'kpi.population': 'Dân số',
    'kpi.communes': 'Xã/phường',
    'kpi.reports_open': 'Phản ánh đang xử lý',
    'kpi.reports_resolved': 'Đã giải quyết',
    'kpi.on_time': 'Đúng hạn',
    'kpi.schools': 'Trường học',
    'kpi.hospitals': 'Cơ sở y tế',
    'kpi.cameras_online': 'Camera hoạt động',
    'kpi.scope_province': 'Toàn tỉnh',
    'kpi.scope_commune': 'Xã/phường: {name}',
    'kpi.clear': 'Bỏ chọn',

    'details.empty': 'Nhấp vào một đối tượng trên bản đồ để xem thông tin.',
    'details.layer': 'Lớp',
    'details.coordinates': 'Tọa độ',
    'details.fly': 'Bay tới',
    'details.commune_card': 'Thẻ chỉ số xã/phường',

    'camera.snapshot': 'Ảnh chụp trực tiếp',
    'camera.no_snapshot': 'Chưa có ảnh chụp từ camera',
    'camera.status': 'Trạng thái',
    'camera.detections': 'Phát hiện gần đây',
    'camera.no_detections': 'Chưa có phát hiện',
    'camera.zones': 'Vùng giám sát',
    'camera.online': 'Trực tuyến',
    'camera.offline': 'Mất kết nối',

    'report.photo': 'Ảnh hiện trường',
    'report.history': 'Lịch sử xử lý',
    'report.unit': 'Đơn vị xử lý',

    'query.polygon': 'Vẽ đa giác',
    'query.circle': 'Vẽ hình tròn',
    'query.commune': 'Chọn xã/phường',
    'query.clear': 'Xóa',
    'query.finish': 'Hoàn tất',
    'query.hint_polygon': 'Nhấp để thêm đỉnh, nhấp đúp hoặc "Hoàn tất" để kết thúc.',
    'query.hint_circle': 'Nhấp chọn tâm, rồi nhấp lần nữa để chọn bán kính.',
    'query.hint_commune': 'Nhấp vào một xã/phường trên bản đồ.',
    'query.preset': 'Truy vấn',
    'query.preset_within': 'Đối tượng trong vùng',
    'query.preset_radius': 'Trong bán kính',
    'query.preset_nearest': 'Gần nhất',
    'query.preset_per_commune': 'Chỉ số theo xã/phường',
    'query.preset_gaps': 'Vùng thiếu dịch vụ',
    'query.target': 'Lớp cần tìm',
    'query.run': 'Chạy',
    'query.results': 'Kết quả',
    'query.no_results': 'Không có kết quả',
    'query.export_csv': 'Xuất CSV',
    'query.export_geojson': 'Xuất GeoJSON',
    'query.radius_m': 'Bán kính (m)',
    'query.count': '{n} kết quả',
    'query.need_area': 'Hãy vẽ vùng hoặc chọn xã/phường trước.',
    'query.distance_m': 'Khoảng cách (m)',
    'query.nearest_n': 'Số lượng',

    'feed.alerts': 'Cảnh báo',
    'feed.events': 'Sự kiện',
    'feed.ack': 'Xác nhận',
    'feed.acked': 'Đã xác nhận',
    'feed.empty': 'Chưa có cảnh báo hoặc sự kiện',
    'feed.unavailable': 'Luồng cảnh báo chưa sẵn sàng trên máy chủ',
    'feed.live': 'Trực tiếp',

    'import.title': 'Nhập dữ liệu GIS',
    'import.intro': 'Tải lên tệp (GeoJSON, Shapefile .zip, GeoPackage, CSV, Excel). Hệ thống kiểm tra thử trước khi ghi.',
    'import.file': 'Tệp dữ liệu',
    'import.layer': 'Lớp đích (slug)',
    'import.mode': 'Chế độ',
    'import.mode_append': 'Bổ sung / cập nhật',
    'import.mode_replace': 'Thay thế',
    'import.dry_run': 'Kiểm tra thử',
    'import.commit': 'Ghi vào CSDL',
    'import.format': 'Định dạng',
    'import.crs': 'Hệ tọa độ',
    'import.schema': 'Cấu trúc thuộc tính',
    'import.preview': 'Xem trước',
    'import.report': 'Báo cáo kiểm tra',
    'import.progress': 'Tiến độ',
    'import.rejects': 'Bản ghi bị từ chối',
    'import.status': 'Trạng thái',
    'import.unavailable': 'Chức năng nhập dữ liệu chưa sẵn sàng trên máy chủ.',
    'import.history': 'Các lần nhập gần đây',
    'import.back': 'Về bản đồ',

    'legend.title': 'Chú giải',
    'tooltip.commune': 'Xã/phường',

    'prop.name': 'Tên',
    'prop.code': 'Mã',
    'prop.kind': 'Loại',
    'prop.type': 'Loại',
    'prop.type_vi': 'Loại hình',
    'prop.level': 'Cấp học',
    'prop.level_vi': 'Cấp học',
    'prop.kind_vi': 'Loại hình',
    'prop.population': 'Dân số',
    'prop.area_km2': 'Diện tích (km²)',
    'prop.density': 'Mật độ (người/km²)',
    'prop.beds': 'Số giường bệnh',
    'prop.pupils': 'Số học sinh',
    'prop.teachers': 'Số giáo viên',
    'prop.visitors_per_year': 'Lượt khách/năm',
    'prop.commune_code': 'Mã xã/phường',
    'prop.commune_name': 'Xã/phường',
    'prop.camera_id': 'Mã camera',
    'prop.owner': 'Đơn vị quản lý',
    'prop.owner_vi': 'Đơn vị quản lý',
    'prop.heading_deg': 'Hướng (độ)',
    'prop.fov_deg': 'Góc nhìn (độ)',
    'prop.range_m': 'Tầm xa (m)',
    'prop.mount_height_m': 'Độ cao lắp đặt (m)',
    'prop.stream_url': 'Luồng video',
    'prop.enabled': 'Đang bật',
    'prop.status': 'Trạng thái',
    'prop.status_vi': 'Trạng thái',
    'prop.report_code': 'Mã phản ánh',
    'prop.category': 'Lĩnh vực',
    'prop.category_vi': 'Lĩnh vực',
    'prop.title': 'Nội dung',
    'prop.received_at': 'Thời điểm tiếp nhận',
    'prop.due_at': 'Hạn xử lý',
    'prop.resolved_at': 'Thời điểm giải quyết',
    'prop.on_time': 'Đúng hạn',
    'prop.rating': 'Đánh giá',
    'prop.MaXa': 'Mã xã',
    'prop.SoHieuToBanDo': 'Số hiệu tờ bản đồ',
    'prop.SoThuTuThua': 'Số thứ tự thửa',
    'prop.DienTich': 'Diện tích (m²)',
    'prop.KyHieuMucDichSuDung': 'Mục đích sử dụng',
    'prop.repaired': 'Đã sửa hình học',

    'value.true': 'Có',
    'value.false': 'Không',
    'value.provincial_hospital': 'Bệnh viện tuyến tỉnh',
    'value.regional_hospital': 'Bệnh viện khu vực',
    'value.health_station': 'Trạm y tế xã',
    'value.mam_non': 'Mầm non',
    'value.tieu_hoc': 'Tiểu học',
    'value.thcs': 'THCS',
    'value.thpt': 'THPT',
    'value.cong_an_tinh': 'Công an tỉnh',
    'value.vms_vinh': 'VMS TP Vinh',
    'value.received': 'Mới tiếp nhận',
    'value.assigned': 'Đã phân công',
    'value.in_progress': 'Đang xử lý',
    'value.resolved': 'Đã giải quyết',
    'value.rejected': 'Từ chối',
    'value.online': 'Trực tuyến',
    'value.offline': 'Mất kết nối',
    'value.ODT': 'ODT — Đất ở đô thị',
    'value.ONT': 'ONT — Đất ở nông thôn',
    'value.LUC': 'LUC — Đất chuyên trồng lúa',
    'value.CLN': 'CLN — Đất trồng cây lâu năm',
    'value.TMD': 'TMD — Đất thương mại, dịch vụ',
    'value.DGT': 'DGT — Đất giao thông',
    'value.SKC': 'SKC — Đất cơ sở sản xuất',
    'value.DGD': 'DGD — Đất cơ sở giáo dục',
    'value.phuong': 'Phường',
    'value.xa': 'Xã',
  },
  en: {
    'app.title': 'IOC Operations Map — Nghệ An',
    'app.subtitle': 'Intelligent Operations Center',
    'app.loading': 'Loading the map…',
    'app.error': 'Could not load data',
    'app.offline_note': 'Basemap: province and ward boundaries (offline)',
    'lang.switch': 'VI',
    'lang.switch_title': 'Chuyển sang tiếng Việt',

    'nav.map': 'Map',
    'nav.import': 'Import data',

    'panel.layers': 'Layers',
    'panel.details': 'Details',
    'panel.close': 'Close',
    'panel.feed': 'Alerts & events',
    'panel.query': 'Spatial query',

    'layer.features': 'features',
    'layer.zoom_in': 'Zoom in (≥ {z}) to see',
    'layer.opacity': 'Opacity',
    'layer.synthetic': 'synthetic',
    'layer.h3': 'H3 view',
    'layer.loading': 'loading…',

    'sector.admin': 'Administration',
    'sector.health': 'Health',
    'sector.education': 'Education',
    'sector.tourism': 'Tourism',
    'sector.land': 'Land',
    'sector.security': 'Security',
    'sector.traffic': 'Traffic',
    'sector.feedback': 'Field reports',
    'sector.environment': 'Environment',
    'sector.other': 'Other',

    'view.vector': 'Features',
    'view.h3': 'H3 grid',
    'view.heatmap': 'Heatmap',
    'h3.layer': 'Aggregated layer',
    'h3.resolution': 'H3 resolution',
    'h3.count': 'Count',
    'h3.legend': 'Density per hexagon',
    'h3.source_server': 'aggregated by the server',
    'h3.source_client': 'aggregated in the browser',

    'time.title': 'Time',
    'time.play': 'Play',
    'time.pause': 'Pause',
    'time.window': 'Window',
    'time.all': 'All',
    'time.days': '{n} days',

    'kpi.population': 'Population',
    'kpi.communes': 'Communes',
    'kpi.reports_open': 'Open reports',
    'kpi.reports_resolved': 'Resolved',
    'kpi.on_time': 'On time',
    'kpi.schools': 'Schools',
    'kpi.hospitals': 'Health facilities',
    'kpi.cameras_online': 'Cameras online',
    'kpi.scope_province': 'Province',
    'kpi.scope_commune': 'Commune: {name}',
    'kpi.clear': 'Clear',

    'details.empty': 'Click a feature on the map to see its details.',
    'details.layer': 'Layer',
    'details.coordinates': 'Coordinates',
    'details.fly': 'Fly to',
    'details.commune_card': 'Commune KPI card',

    'camera.snapshot': 'Live snapshot',
    'camera.no_snapshot': 'No snapshot from this camera yet',
    'camera.status': 'Status',
    'camera.detections': 'Recent detections',
    'camera.no_detections': 'No detections yet',
    'camera.zones': 'Zones',
    'camera.online': 'Online',
    'camera.offline': 'Offline',

    'report.photo': 'Photo',
    'report.history': 'Status history',
    'report.unit': 'Responsible unit',

    'query.polygon': 'Draw polygon',
    'query.circle': 'Draw circle',
    'query.commune': 'Pick commune',
    'query.clear': 'Clear',
    'query.finish': 'Finish',
    'query.hint_polygon': 'Click to add vertices; double-click or "Finish" to close.',
    'query.hint_circle': 'Click the centre, then click again to set the radius.',
    'query.hint_commune': 'Click a commune on the map.',
    'query.preset': 'Query',
    'query.preset_within': 'Features within area',
    'query.preset_radius': 'Within radius',
    'query.preset_nearest': 'Nearest',
    'query.preset_per_commune': 'Indicators per commune',
    'query.preset_gaps': 'Service gaps',
    'query.target': 'Target layer',
    'query.run': 'Run',
    'query.results': 'Results',
    'query.no_results': 'No results',
    'query.export_csv': 'Export CSV',
    'query.export_geojson': 'Export GeoJSON',
    'query.radius_m': 'Radius (m)',
    'query.count': '{n} results',
    'query.need_area': 'Draw an area or pick a commune first.',
    'query.distance_m': 'Distance (m)',
    'query.nearest_n': 'How many',

    'feed.alerts': 'Alerts',
    'feed.events': 'Events',
    'feed.ack': 'Acknowledge',
    'feed.acked': 'Acknowledged',
    'feed.empty': 'No alerts or events yet',
    'feed.unavailable': 'The alert stream is not available on this server',
    'feed.live': 'Live',

    'import.title': 'GIS data import',
    'import.intro': 'Upload a file (GeoJSON, zipped Shapefile, GeoPackage, CSV, Excel). It is checked with a dry run before anything is written.',
    'import.file': 'Data file',
    'import.layer': 'Target layer (slug)',
    'import.mode': 'Mode',
    'import.mode_append': 'Append / update',
    'import.mode_replace': 'Replace',
    'import.dry_run': 'Dry run',
    'import.commit': 'Commit',
    'import.format': 'Format',
    'import.crs': 'CRS',
    'import.schema': 'Schema',
    'import.preview': 'Preview',
    'import.report': 'Dry-run report',
    'import.progress': 'Progress',
    'import.rejects': 'Rejected rows',
    'import.status': 'Status',
    'import.unavailable': 'Imports are not available on this server yet.',
    'import.history': 'Recent imports',
    'import.back': 'Back to the map',

    'legend.title': 'Legend',
    'tooltip.commune': 'Commune',

    'prop.name': 'Name',
    'prop.code': 'Code',
    'prop.kind': 'Kind',
    'prop.type': 'Type',
    'prop.type_vi': 'Type',
    'prop.level': 'Level',
    'prop.level_vi': 'Level',
    'prop.kind_vi': 'Kind',
    'prop.population': 'Population',
    'prop.area_km2': 'Area (km²)',
    'prop.density': 'Density (people/km²)',
    'prop.beds': 'Beds',
    'prop.pupils': 'Pupils',
    'prop.teachers': 'Teachers',
    'prop.visitors_per_year': 'Visitors per year',
    'prop.commune_code': 'Commune code',
    'prop.commune_name': 'Commune',
    'prop.camera_id': 'Camera ID',
    'prop.owner': 'Operator',
    'prop.owner_vi': 'Operator',
    'prop.heading_deg': 'Heading (°)',
    'prop.fov_deg': 'Field of view (°)',
    'prop.range_m': 'Range (m)',
    'prop.mount_height_m': 'Mount height (m)',
    'prop.stream_url': 'Stream',
    'prop.enabled': 'Enabled',
    'prop.status': 'Status',
    'prop.status_vi': 'Status',
    'prop.report_code': 'Report code',
    'prop.category': 'Category',
    'prop.category_vi': 'Category',
    'prop.title': 'Summary',
    'prop.received_at': 'Received',
    'prop.due_at': 'Due',
    'prop.resolved_at': 'Resolved',
    'prop.on_time': 'On time',
    'prop.rating': 'Rating',
    'prop.MaXa': 'Commune code',
    'prop.SoHieuToBanDo': 'Map sheet no.',
    'prop.SoThuTuThua': 'Parcel no.',
    'prop.DienTich': 'Area (m²)',
    'prop.KyHieuMucDichSuDung': 'Land use',
    'prop.repaired': 'Geometry repaired',

    'value.true': 'Yes',
    'value.false': 'No',
    'value.provincial_hospital': 'Provincial hospital',
    'value.regional_hospital': 'Regional hospital',
    'value.health_station': 'Commune health station',
    'value.mam_non': 'Kindergarten',
    'value.tieu_hoc': 'Primary',
    'value.thcs': 'Lower secondary',
    'value.thpt': 'Upper secondary',
    'value.cong_an_tinh': 'Provincial police',
    'value.vms_vinh': 'Vinh city VMS',
    'value.received': 'Received',
    'value.assigned': 'Assigned',
    'value.in_progress': 'In progress',
    'value.resolved': 'Resolved',
    'value.rejected': 'Rejected',
    'value.online': 'Online',
    'value.offline': 'Offline',
    'value.ODT': 'ODT — Urban residential',
    'value.ONT': 'ONT — Rural residential',
    'value.LUC': 'LUC — Rice land',
    'value.CLN': 'CLN — Perennial crops',
    'value.TMD': 'TMD — Commercial',
    'value.DGT': 'DGT — Transport',
    'value.SKC': 'SKC — Production',
    'value.DGD': 'DGD — Education',
    'value.phuong': 'Ward',
    'value.xa': 'Commune',
  },
};

let current = 'vi';
const listeners = [];

/** The active language code. */
export function lang() {
  return current;
}

/** Switch language and notify every subscriber so it can redraw its strings. */
export function setLang(code) {
  current = code === 'en' ? 'en' : 'vi';
  document.documentElement.lang = current;
  try {
    localStorage.setItem('iocmap.lang', current);
  } catch {
    // private mode: the choice just does not persist
  }
  for (const fn of listeners) fn(current);
}

/** Call fn on every language change. */
export function onLang(fn) {
  listeners.push(fn);
}

/** Restore the saved language (Vietnamese unless the user chose English). */
export function initLang() {
  let saved = null;
  try {
    saved = localStorage.getItem('iocmap.lang');
  } catch {
    saved = null;
  }
  const fromUrl = new URLSearchParams(location.search).get('lang');
  current = fromUrl === 'en' || (!fromUrl && saved === 'en') ? 'en' : 'vi';
  document.documentElement.lang = current;
}

/** Translate a key, filling {placeholders} from vars. */
export function t(key, vars) {
  let s = STRINGS[current][key] ?? STRINGS.vi[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, String(v));
  return s;
}

/** Whether a key has a translation (so callers can fall back to raw values). */
export function has(key) {
  return key in STRINGS.vi || key in STRINGS[current];
}

/** Human label of a property name. */
export function propLabel(name) {
  return has(`prop.${name}`) ? t(`prop.${name}`) : name;
}

/** Human label of a categorical value or boolean. */
export function valueLabel(value) {
  if (value === null || value === undefined) return '—';
  const key = `value.${value}`;
  return has(key) ? t(key) : String(value);
}

/** A layer's title in the active language. */
export function layerTitle(layer) {
  return current === 'en' ? layer.title_en || layer.title_vi : layer.title_vi || layer.title_en;
}

/** Locale-aware number formatting (Vietnamese uses dots for thousands). */
export function fmtNumber(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return Number(n).toLocaleString(current === 'en' ? 'en-GB' : 'vi-VN', {
    maximumFractionDigits: digits,
  });
}

/** Locale-aware date-time formatting. */
export function fmtDate(value) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(current === 'en' ? 'en-GB' : 'vi-VN', {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
  });
}
