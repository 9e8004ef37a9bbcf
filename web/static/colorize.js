const results = document.getElementById("results");
async function colorize(file) {
  const row = document.createElement("div");
  row.className = "result";
  row.innerHTML = '<img class="before"><img class="after"><div><div class="name"></div>' +
                  '<a class="download">Download PNG</a><div class="message"></div></div>';
  row.querySelector(".name").textContent = file.name;
  row.querySelector(".before").src = URL.createObjectURL(file);
  row.querySelector(".download").hidden = true;
  results.appendChild(row);
  const body = new FormData();
  body.append("file", file);
  const message = row.querySelector(".message");
  message.textContent = "colorizing...";
  try {
    const response = await fetch("/api/colorize", {method: "POST", body});
    if (!response.ok) {
      const error = await response.json().catch(() => ({detail: response.statusText}));
      message.textContent = error.detail;
      message.className = "message error";
      row.querySelector(".before").remove();
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    row.querySelector(".after").src = url;
    const link = row.querySelector(".download");
    link.href = url;
    link.download = file.name.replace(/\.[^.]*$/, "") + "_colorized.png";
    link.hidden = false;
    message.textContent = "done";
    row.classList.add("done");
  } catch (e) {
    message.textContent = "the server did not answer: " + e;
    message.className = "message error";
  }
}
function colorizeAll(files) { for (const f of files) colorize(f); }
document.getElementById("files").addEventListener("change", e => colorizeAll(e.target.files));
const drop = document.getElementById("drop");
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); colorizeAll(e.dataTransfer.files); });
