// The reply box's Bold, Italic and [quote] buttons: wrap the selection in the tag.
// (A static file, not inline script: the Content-Security-Policy allows only 'self'.)
document.querySelectorAll('.toolbar [data-tag]').forEach(function (button) {
  button.addEventListener('click', function () {
    var box = document.getElementById('reply-body');
    var open = '[' + button.dataset.tag + ']', close = '[/' + button.dataset.tag + ']';
    var from = box.selectionStart, to = box.selectionEnd, text = box.value;
    box.value = text.slice(0, from) + open + text.slice(from, to) + close + text.slice(to);
    box.focus();
    box.setSelectionRange(from + open.length, to + open.length);
  });
});
