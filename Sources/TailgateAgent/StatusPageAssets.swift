/// The status page's stylesheet and script, inline in every page: the endpoint may be reached only over the
/// tailnet, so the page loads nothing from anywhere else.
enum StatusPageAssets {
    static let style = """
    :root{--bg:#fff;--fg:#1d2125;--muted:#5f6b76;--line:#d9dee3;--card:#f5f7f9;--ok:#17803d;--bad:#c62828;--warn:#a75a00;--info:#1f5fbf;color-scheme:light dark}
    @media (prefers-color-scheme:dark){:root{--bg:#15181b;--fg:#e6e9ec;--muted:#9aa6b1;--line:#2f363d;--card:#1d2226;--ok:#4cc774;--bad:#ff6b6b;--warn:#f0a848;--info:#6ea8ff}}
    *{box-sizing:border-box}
    body{margin:0 auto;max-width:72rem;padding:.75rem;background:var(--bg);color:var(--fg);font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
    h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.05rem;margin:1.4rem 0 .4rem;border-bottom:1px solid var(--line);padding-bottom:.2rem}
    .muted,.meta{color:var(--muted)}.meta{margin:.2rem 0;font-size:.9rem}
    .banner{padding:.55rem .75rem;border-radius:.4rem;font-weight:600;margin:.5rem 0;border-left:.35rem solid}
    .banner.ok{border-color:var(--ok);background:var(--card)}.banner.bad{border-color:var(--bad);background:var(--card);color:var(--bad)}
    ul.problems{margin:.3rem 0;padding-left:1.2rem}ul.problems li{margin:.15rem 0}
    table{border-collapse:collapse;width:100%;font-size:.92rem}
    th,td{text-align:left;padding:.3rem .45rem;border-bottom:1px solid var(--line);vertical-align:top}
    th{color:var(--muted);font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums}
    code{font:.88em ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
    .st{font-weight:700;text-transform:uppercase;font-size:.8rem;letter-spacing:.03em}
    .up,.in_sync,.good{color:var(--ok)}.down,.unresolved,.bad,.out_of_step{color:var(--bad)}.skipped,.warn{color:var(--warn)}.pending,.unchecked{color:var(--muted)}.draining{color:var(--info)}
    details summary{cursor:pointer;color:var(--muted)}
    footer{margin:1.5rem 0 .5rem;font-size:.85rem;color:var(--muted)}a{color:var(--info)}
    #updated.stale{color:var(--warn)}
    @media (max-width:640px){
    thead{display:none}table,tbody,tr,td{display:block;width:100%}
    tr{border:1px solid var(--line);border-radius:.4rem;margin:.45rem 0;padding:.2rem .1rem;background:var(--card)}
    td{border:0;padding:.15rem .5rem;display:flex;justify-content:space-between;gap:.75rem}
    td>div{text-align:right;min-width:0}
    td.n{text-align:right}td::before{content:attr(data-label);color:var(--muted);font-weight:600;text-align:left;white-space:nowrap}
    }
    """

    /// Refreshes every element with `data-k` (a path into /status?format=json, separated by "/": object keys,
    /// list items by position as `#N` or by address) every few seconds; loads the page again when what it lays out has
    /// changed (`data-shape`, the same key the server wrote), and rewrites the recent errors.
    static let script = """
    (function(){
    var b=document.body,shape=b.getAttribute('data-shape'),upd=document.getElementById('updated');
    function at(o,p){var s=p.split('/');for(var i=0;i<s.length;i++){if(o==null)return;var k=s[i];
    o=k.charAt(0)==='#'?o[+k.slice(1)]:Array.isArray(o)?o.find(function(e){return e.address===k}):o[k]}return o}
    function bytes(v){var u=['B','KiB','MiB','GiB','TiB'],i=0;while(v>=1024&&i<4){v/=1024;i++}return (i?v.toFixed(1):v)+' '+u[i]}
    function dur(v){var d=Math.floor(v/86400),h=Math.floor(v%86400/3600),m=Math.floor(v%3600/60),s=v%60;
    return d?d+'d '+h+'h':h?h+'h '+m+'m':m?m+'m '+s+'s':s+'s'}
    function fmt(v,f){if(v==null)return '–';if(f==='bytes')return bytes(v);if(f==='dur')return dur(v);if(f==='rate')return (+v).toFixed(1);
    if(f==='dict'){var k=Object.keys(v);return k.length?k.map(function(x){return x+' '+v[x]}).join(' · '):'none'}return String(v)}
    function key(j){return j.config.generation+'|'+j.ready+'|'+(j.last_reload?j.last_reload.ok:'')+'|'+j.upstreams.map(function(u){
    return u.servers.map(function(s){return s.state}).join(',')}).join(';')+'|'+j.departed_servers.length+'|'+j.firewall.in_sync+'|'+j.recent_errors.length}
    function tick(){fetch('/status?format=json',{cache:'no-store'}).then(function(r){return r.json()}).then(function(j){
    if(key(j)!==shape){location.reload();return}
    document.querySelectorAll('[data-k]').forEach(function(e){var t=fmt(at(j,e.getAttribute('data-k')),e.getAttribute('data-f'));if(e.textContent!==t)e.textContent=t});
    var rows=document.querySelectorAll('#errors tbody tr');j.recent_errors.forEach(function(x,i){var r=rows[i];if(!r)return;
    [x.time,x.listener,x.client,x.sni||'–',x.outcome,x.reason||''].forEach(function(v,c){var d=r.cells[c];if(d){d=d.querySelector('code')||d.firstElementChild||d;d.textContent=v}})});
    upd.textContent='live, as of '+new Date().toLocaleTimeString();upd.className=''
    }).catch(function(){upd.textContent='cannot reach the agent; numbers are stale';upd.className='stale'})
    .finally(function(){setTimeout(tick,3000)})}
    setTimeout(tick,3000)})();
    """

    /// The script's hash for the page's Content-Security-Policy: no other script may run on the page.
    static let scriptHash: String = "sha256-" + base64(ContentHash.sha256(Array(script.utf8)))

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
            for position in 0..<4 {
                out.append(position <= chunk.count ? alphabet[Int(value >> (18 - 6 * UInt32(position)) & 63)] : UInt8(ascii: "="))
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
