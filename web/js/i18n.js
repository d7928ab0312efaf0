// Every text the pages show, one catalogue per language. Vietnamese by default.
const CATALOGUES = {
  vi: {
    "app.name": "hallbridge – Cầu truyền hình hội nghị",
    "lang.switch": "English",
    "site.program": "Chương trình",
    "site.you": "Điểm cầu của bạn",
    "site.observer": "Theo dõi",
    "site.sound": "Bật âm thanh",
    "conn.connecting": "Đang kết nối…",
    "conn.connected": "Đã kết nối tín hiệu",
    "conn.lost": "Mất kết nối, đang kết nối lại…",
    "conn.refused": "Không được phép tham gia",
    "media.new": "Chưa có hình",
    "media.connecting": "Đang kết nối hình/tiếng…",
    "media.connected": "Đang nhận chương trình",
    "media.failed": "Mất kết nối hình/tiếng",
    "media.closed": "Đã rời",
    "media.camera": "Không mở được camera/micro: ",
    "presence.offline": "Chưa vào",
    "presence.signaling": "Đã mở trang",
    "presence.connecting": "Đang kết nối",
    "presence.live": "Trực tuyến",
    "presence.lost": "Mất kết nối",
    "console.title": "Bàn kỹ thuật – Hội trường chính",
    "console.live": "Trực tuyến",
    "console.program": "Đang phát",
    "console.region": "Khu vực",
    "hall.title": "Hội trường chính – phát tín hiệu",
    "hall.publishing": "Đang phát tín hiệu hội trường",
    "stats.frames": "khung hình",
  },
  en: {
    "app.name": "hallbridge – conference bridge",
    "lang.switch": "Tiếng Việt",
    "site.program": "Program",
    "site.you": "Your site",
    "site.observer": "Observer",
    "site.sound": "Turn sound on",
    "conn.connecting": "Connecting…",
    "conn.connected": "Signaling connected",
    "conn.lost": "Connection lost, reconnecting…",
    "conn.refused": "Not allowed to join",
    "media.new": "No picture yet",
    "media.connecting": "Connecting audio/video…",
    "media.connected": "Receiving the program",
    "media.failed": "Audio/video connection lost",
    "media.closed": "Left",
    "media.camera": "Cannot open camera/microphone: ",
    "presence.offline": "Not joined",
    "presence.signaling": "Page open",
    "presence.connecting": "Connecting",
    "presence.live": "Live",
    "presence.lost": "Lost",
    "console.title": "Technician console – main hall",
    "console.live": "Live",
    "console.program": "On air",
    "console.region": "Region",
    "hall.title": "Main hall – feed publisher",
    "hall.publishing": "Publishing the main hall feed",
    "stats.frames": "frames",
  },
};

export let lang = localStorage.getItem("hallbridge.lang") || "vi";

export function t(key) {
  return (CATALOGUES[lang] && CATALOGUES[lang][key]) || CATALOGUES.vi[key] || key;
}

export function setLang(next) {
  lang = next;
  localStorage.setItem("hallbridge.lang", next);
  document.documentElement.lang = next;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

export function langToggle(button, onChange) {
  button.textContent = t("lang.switch");
  button.addEventListener("click", () => {
    setLang(lang === "vi" ? "en" : "vi");
    button.textContent = t("lang.switch");
    onChange();
  });
  setLang(lang);
}
